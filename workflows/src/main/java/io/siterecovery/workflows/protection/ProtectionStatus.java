package io.siterecovery.workflows.protection;

import io.siterecovery.workflows.common.Health;
import java.time.Instant;
import java.util.List;

/**
 * The {@code status} query of ProtectVm. {@code rpoSeconds}: the age of the latest applied
 * point when the query is read (health and its reasons likewise);
 * {@code recoveryPoints} are the retained points, oldest first; {@code nextCycleAt}: when the
 * next delta cycle is due (null while no cycles run: before protection, disabled, failed over).
 */
public record ProtectionStatus(String vm, String policy, ProtectionState state, Health health,
    List<String> healthReasons, String sourceSite, String targetSite, Long rpoSeconds,
    RecoveryPoint latestRecoveryPoint, List<RecoveryPoint> recoveryPoints, Progress progress,
    Instant resyncPendingUntil, String resyncReason, List<String> notes, long deltaCycles,
    long failedCycles, long bytesShipped, Instant lastCycleAt,
    Instant nextCycleAt) {}
