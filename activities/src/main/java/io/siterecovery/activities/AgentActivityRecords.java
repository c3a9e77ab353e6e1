package io.siterecovery.activities;

import java.time.Instant;

/** Inputs and outputs of the agent activities. */
public final class AgentActivityRecords {
  private AgentActivityRecords() {}

  /** {@code progressWorkflowId} is the workflow whose status shows this copy's progress. */
  public record CopyDiskRequest(ProtectionPlan plan, String disk, long sizeBytes,
      String progressWorkflowId) {}

  public record DiskCopyResult(String disk, long bytesRead, long bytesSent, long resumedFrom,
      long durationMillis) {}

  /** Progress of a long copy, signalled to the workflow that reports it. */
  public record CopyProgress(String disk, long bytesDone, long bytesTotal, long bytesSent,
      double bytesPerSecond, Instant at) {}

  /** One delta cycle; {@code appliedGeneration} and {@code pointTime} name the latest point. */
  public record ReplicationCycle(long lastSealedGeneration, long appliedGeneration,
      Instant pointTime, int logsShipped, long bytesShipped) {}

  public record ReplicaPoint(long appliedGeneration, Instant pointTime, boolean initialComplete) {}

  /** {@code rpoThreshold}: the RPO above which health turns WARNING. */
  public record PolicySettings(String name, java.time.Duration copyFrequency,
      java.time.Duration rpoThreshold) {}
}
