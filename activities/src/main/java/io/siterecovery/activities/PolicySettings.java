package io.siterecovery.activities;

import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneId;

/**
 * A replication policy as the workflows use it. {@code initialReplicationStart} null = now;
 * {@code appConsistentFrequency} null = crash-consistent points only; {@code retention} bounds
 * how far back the replica can be rolled; {@code maxTestDuration}: a test failover cleans itself
 * up after this long.
 */
public record PolicySettings(String name, Duration copyFrequency, Duration rpoThreshold,
    Duration retention, Duration appConsistentFrequency, Instant initialReplicationStart,
    ResyncWindow resyncWindow, boolean compression, Double bandwidthMBps,
    Duration maxTestDuration) {
  public static final Duration DEFAULT_MAX_TEST_DURATION = Duration.ofDays(14);

  public PolicySettings {
    // Settings recorded in workflow histories before the field existed read back without it.
    if (maxTestDuration == null) {
      maxTestDuration = DEFAULT_MAX_TEST_DURATION;
    }
  }

  /**
   * This policy when every field is usable by the workflows, else an IllegalArgumentException
   * naming the policy and the field. Checked where policies are loaded (the worker's
   * configuration) and again at every lookup, so no value can make workflow code throw (a bad
   * time zone there would fail its workflow task again and again).
   */
  public PolicySettings validated() {
    positive("copyFrequency", copyFrequency, true);
    positive("rpoThreshold", rpoThreshold, true);
    positive("retention", retention, false);
    positive("appConsistentFrequency", appConsistentFrequency, false);
    positive("maxTestDuration", maxTestDuration, true);
    if (resyncWindow != null) {
      if (resyncWindow.start() == null || resyncWindow.end() == null) {
        throw invalid("resyncWindow", "needs a start and an end (\"22:00\", \"06:00\")");
      }
      try {
        ZoneId.of(resyncWindow.timeZone());
      } catch (DateTimeException | NullPointerException e) {
        throw invalid("resyncWindow.timeZone", "'" + resyncWindow.timeZone()
            + "' is not a time zone (e.g. \"UTC\", \"Europe/Paris\")");
      }
    }
    if (bandwidthMBps != null && !(bandwidthMBps > 0 && Double.isFinite(bandwidthMBps))) {
      throw invalid("bandwidthMBps", bandwidthMBps + " must be above zero (or absent: no limit)");
    }
    return this;
  }

  private void positive(String field, Duration value, boolean required) {
    if (value == null ? required : value.isNegative() || value.isZero()) {
      throw invalid(field, value == null ? "is required" : value + " must be above zero");
    }
  }

  private IllegalArgumentException invalid(String field, String problem) {
    return new IllegalArgumentException("policy '" + name + "': \"" + field + "\" " + problem);
  }

  public AgentActivityRecords.TransferSettings transfer() {
    return new AgentActivityRecords.TransferSettings(compression, bandwidthMBps);
  }
}
