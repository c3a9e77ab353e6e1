package io.siterecovery.workflows.protection;

/** {@code {"vm":"web01","policy":"default"}}; {@code policy} defaults to "default". */
public record ProtectVmInput(String vm, String policy) {}
