package io.siterecovery.workflows.protection;

/** Body of the {@code setPolicy} signal: {@code {"policy":"gold"}}. */
public record PolicyChange(String policy) {}
