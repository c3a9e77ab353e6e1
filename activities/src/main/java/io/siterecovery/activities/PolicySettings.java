package io.siterecovery.activities;

import java.time.Duration;
import java.time.Instant;

/**
 * A replication policy as the workflows use it. {@code initialReplicationStart} null = now;
 * {@code appConsistentFrequency} null = crash-consistent points only; {@code retention} bounds
 * how far back the replica can be rolled.
 */
public record PolicySettings(String name, Duration copyFrequency, Duration rpoThreshold,
    Duration retention, Duration appConsistentFrequency, Instant initialReplicationStart,
    ResyncWindow resyncWindow, boolean compression, Double bandwidthMBps) {

  public AgentActivityRecords.TransferSettings transfer() {
    return new AgentActivityRecords.TransferSettings(compression, bandwidthMBps);
  }
}
