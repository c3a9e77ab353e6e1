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

  /** Outcome of one swap-ship-apply cycle; the applied generation is the latest recovery point. */
  public record ReplicationResult(long lastSealedGeneration, long appliedGeneration,
      Instant pointTime, int logsShipped, long bytesShipped) {}

  public record SourceStatus(String vm, long activeGeneration, int sealedLogs, long pendingBytes) {}

  public record CreateReplicaRequest(String vm, String sourceSite, List<VmRecord.DiskSpec> disks) {}

  public record ApplyRequest(long generation, Instant pointTime) {}

  public record ErrorBody(String code, String message) {}
}
