package io.siterecovery.activities;

import java.time.Instant;
import java.util.Map;

/**
 * How long the parts of one completed recovery-plan run took, kept in its result so that the
 * next run of the same plan and operation can show an ETA. {@code vmSeconds}: from a VM's start
 * until it reached its target state; {@code groupSeconds}: from a group's start until it was
 * done (its {@code after} actions included); {@code totalSeconds}: from the start of the run
 * until the last group was done. Only parts that finished are in the maps.
 */
public record PlanTimings(String runId, Instant endedAt, Map<String, Long> vmSeconds,
    Map<String, Long> groupSeconds, Long totalSeconds) {}
