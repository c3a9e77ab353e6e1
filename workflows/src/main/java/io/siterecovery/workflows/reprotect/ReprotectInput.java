package io.siterecovery.workflows.reprotect;

/**
 * {@code {"vm":"web01","shutDownOldSource":false,"policy":"default"}}. {@code shutDownOldSource}:
 * if the VM still runs on the site it failed over from (that site did not answer when the
 * failover fenced it), shut it down there rather than refuse. {@code policy}: of the protection
 * that follows (default "default").
 */
public record ReprotectInput(String vm, Boolean shutDownOldSource, String policy) {}
