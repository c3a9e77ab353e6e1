package io.siterecovery.workflows.failover;

/**
 * {@code {"vm":"web01","type":"PLANNED","recoveryPoint":"LATEST"}}; {@code recoveryPoint}
 * defaults to LATEST.
 */
public record FailoverInput(String vm, FailoverType type, String recoveryPoint) {}
