package io.siterecovery.workflows.failover;

/**
 * Body of the {@code cleanup} signal that ends a TEST failover: {@code {}} or
 * {@code {"notes":"checked the orders page"}}; the notes stay in the status after cleanup.
 */
public record CleanupRequest(String notes) {}
