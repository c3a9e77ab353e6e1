package io.siterecovery.workflows.failover;

import io.siterecovery.workflows.protection.RecoveryPoint;
import java.time.Instant;
import java.util.List;

/** The {@code status} query of Failover; {@code steps} is the runbook so far, one line a step. */
public record FailoverStatus(String vm, FailoverType type, FailoverState state, String sourceSite,
    String targetSite, RecoveryPoint recoveryPoint, List<String> steps, String error,
    Instant startedAt) {}
