package io.siterecovery.agent.api;

import io.siterecovery.agent.vm.VmRecord;
import java.time.Instant;
import java.util.List;

/** The agent API's JSON bodies. */
public final class AgentMessages {
  private AgentMessages() {}

  public record CreateVmRequest(String name, List<Long> diskSizes) {}

  public record PowerRequest(VmRecord.Power state) {}

  public record RoleRequest(VmRecord.Role role) {}

  public record EnableProtectionRequest(String targetSite, String targetUrl) {}

  public record ProtectionState(String vm, String targetSite, boolean initialComplete,
      long activeGeneration) {}

  public record CopyRangeRequest(long offset, long length) {}

  public record CopyRangeResult(long offset, long nextOffset, long bytesRead, long bytesSent) {}

  /**
   * Asks for one delta cycle. {@code retentionSeconds}: after applying, the replica drops recovery
   * points older than this relative to the new point (null keeps them all). {@code quiesce}: run
   * the VM's quiesce hook before the swap, to seal an app-consistent point.
   */
  public record ReplicateRequest(Long retentionSeconds, boolean quiesce) {}

  /**
   * Outcome of one swap-ship-apply cycle; the applied generation is the latest recovery point.
   * {@code appConsistent} and {@code quiesceMessage} describe the generation sealed by this call;
   * the message says why it is only crash-consistent when a quiesce was asked for and did not
   * succeed (null when it succeeded or was not asked for).
   */
  public record ReplicationResult(long lastSealedGeneration, long appliedGeneration,
      Instant pointTime, int logsShipped, long bytesShipped, boolean appConsistent,
      String quiesceMessage) {}

  public record SourceStatus(String vm, long activeGeneration, int sealedLogs, long pendingBytes) {}

  public record CreateReplicaRequest(String vm, String sourceSite, List<VmRecord.DiskSpec> disks) {}

  /**
   * Applies a staged generation on the replica; the point is recorded with its seal time and
   * whether the source quiesced before sealing it. {@code retentionSeconds}: then drop points
   * older than this relative to {@code pointTime} (null keeps them all; the newest always stays).
   */
  public record ApplyRequest(long generation, Instant pointTime, boolean appConsistent,
      Long retentionSeconds) {}

  /** Rolls a powered-off replica back to a retained recovery point. */
  public record RollbackRequest(Long generation) {}

  public record ErrorBody(String code, String message) {}
}
