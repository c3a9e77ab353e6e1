package io.siterecovery.workflows.failover;

/**
 * Signal {@code changeRecoveryPoint}: {@code {"recoveryPoint":"rp-5"}}, any retained point older
 * or newer than the one running, or LATEST / LATEST_APP_CONSISTENT.
 */
public record ChangeRecoveryPoint(String recoveryPoint) {}
