package io.siterecovery.workflows.failover;

import io.siterecovery.workflows.protection.RecoveryPoint;
import java.time.Instant;
import java.util.List;

/**
 * The {@code status} query of Failover; {@code steps} is the runbook so far, one line a step.
 * {@code commitPolicy} and {@code decidesItselfAt}: what the failover does by itself if nobody
 * signals, and when (null without a policy, or once decided).
 */
public record FailoverStatus(String vm, FailoverType type, FailoverState state, String sourceSite,
    String targetSite, RecoveryPoint recoveryPoint, List<String> steps, String error,
    Instant startedAt, CommitPolicy commitPolicy, Instant decidesItselfAt) {}
