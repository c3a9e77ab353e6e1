package io.siterecovery.activities;

import java.time.Duration;
import java.time.Instant;

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

  public AgentActivityRecords.TransferSettings transfer() {
    return new AgentActivityRecords.TransferSettings(compression, bandwidthMBps);
  }
}
