package io.siterecovery.workflows.protection;

import io.siterecovery.activities.PolicySettings;
import io.siterecovery.workflows.common.Health;
import java.time.Instant;
import java.util.List;

/**
 * What a ProtectVm run hands the next one at continue-as-new, so counters, health and the
 * missed-cycle record survive it. {@code policySettings}: the settings in use, kept if the
 * policy cannot be read when the next run starts. {@code health}/{@code healthReasons}: the health the run's own
 * errors set (the RPO and missed-cycle rules are worked out again from the rest).
 * {@code pauseRequested}, {@code resyncRequested}, {@code requestedPolicy}: operator requests not
 * yet acted on.
 */
public record CarriedState(PolicySettings policySettings, Instant lastAppConsistentAt,
    long deltaCycles, long failedCycles, long bytesShipped, Instant lastCycleAt, List<String> notes, List<CycleOutcome> cycleOutcomes,
    Instant nextCycleDueAt, Health health, List<String> healthReasons, String resyncReason,
    Instant resyncPendingUntil, boolean pauseRequested, boolean resyncRequested,
    String requestedPolicy) {}
