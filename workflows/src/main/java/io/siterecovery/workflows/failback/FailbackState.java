package io.siterecovery.workflows.failback;

/**
 * VALIDATING, FAILING_OVER (the planned failover home, {@code failover-<vm>}, until it is
 * committed or cancelled), REPROTECTING ({@code reprotect-<vm>}), then COMPLETED, CANCELLED or
 * FAILED.
 */
public enum FailbackState { VALIDATING, FAILING_OVER, REPROTECTING, COMPLETED, CANCELLED, FAILED }
