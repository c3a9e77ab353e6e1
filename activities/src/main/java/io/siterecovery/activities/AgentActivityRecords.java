package io.siterecovery.activities;

import java.time.Instant;
import java.util.List;

/** Inputs and outputs of the agent activities. */
public final class AgentActivityRecords {
  private AgentActivityRecords() {}

  /** How bytes travel between agents; from the policy. {@code bandwidthMBps} null = no limit. */
  public record TransferSettings(boolean compress, Double bandwidthMBps) {
    public static final TransferSettings DEFAULT = new TransferSettings(false, null);
  }

  /**
   * {@code progressWorkflowId} is the workflow whose status shows this copy's progress;
   * {@code startOffset}: bytes an earlier, stopped copy already put on the replica (null: none).
   */
  public record CopyDiskRequest(ProtectionPlan plan, String disk, long sizeBytes,
      TransferSettings transfer, String progressWorkflowId, Long startOffset) {}

  public record DiskCopyResult(String disk, long bytesRead, long bytesSent, long resumedFrom,
      long durationMillis) {}

  /** Progress of a long copy or resync, signalled to the workflow that reports it. */
  public record CopyProgress(String phase, String disk, long bytesDone, long bytesTotal,
      long bytesSent, double bytesPerSecond, Instant at) {}

  /** One delta cycle's parameters: retention prunes old points, quiesce asks for app-consistency. */
  public record DeltaRequest(ProtectionPlan plan, Long retentionSeconds, boolean quiesce,
      TransferSettings transfer) {}

  /** A retained recovery point on the replica. */
  public record PointInfo(long generation, Instant time, boolean appConsistent) {}

  /**
   * One delta cycle: the latest point, the retained points, and the source's backlog, which
   * tells the workflow when a resync would be cheaper than shipping logs.
   */
  public record ReplicationCycle(long lastSealedGeneration, long appliedGeneration,
      Instant pointTime, int logsShipped, long bytesShipped, boolean appConsistent,
      String quiesceMessage, List<PointInfo> points, SourceHealth source) {}

  /** The source's view: unshipped log bytes, disk bytes, and why a resync is needed (or null). */
  public record SourceHealth(long pendingBytes, long diskBytes, String resyncRequiredReason) {
    public boolean logsExceedHalfTheDisks() {
      return diskBytes > 0 && pendingBytes * 2 >= diskBytes;
    }
  }

  public record ReplicaPoint(long appliedGeneration, Instant pointTime, boolean initialComplete,
      List<PointInfo> points) {}

  public record ResyncDiskRequest(ProtectionPlan plan, String disk, long sizeBytes,
      TransferSettings transfer, String progressWorkflowId) {}

  public record DiskResyncResult(String disk, long blocksCompared, long blocksDiffering,
      long bytesSent, long durationMillis) {}

  /**
   * A test VM on the target site: {@code testVm} at replica point {@code generation}, its disks
   * exported writable as {@code exports} (NBD URIs). {@code key} is the idempotency key of the
   * test failover that created it.
   */
  public record TestVm(String vm, String testVm, long generation, Instant pointTime, String key,
      Instant createdAt, List<String> exports) {}

  /** A cleanup's outcome: {@code remaining} is empty when nothing of the test VM is left. */
  public record TestCleanup(String testVm, boolean existed, List<String> remaining) {}

  /** A committed failover: bytes changed since the failover point, which Reprotect sends back. */
  public record PromoteOutcome(long changedBytes) {}

  /**
   * Where a failed-over VM runs ({@code activeSite}) and where it came from ({@code oldSite}),
   * with the old copy's state there: {@code FAILED_OVER} (fenced), {@code RUNNING} or {@code OFF}
   * (never fenced: the site was unreachable), {@code MISSING} (its disks are gone).
   * {@code home} is the site the VM was created on.
   */
  public record ReprotectPlan(String vm, String activeSite, String oldSite, String oldCopy,
      String home, long changedBytes, List<ProtectionPlan.DiskInfo> disks) {}

  /**
   * Writes the old source held that never reached the replica, saved there before reverse
   * replication: {@code ranges} lists the first ones as "disk:offset+length".
   */
  public record Salvaged(String id, String site, String path, long bytes, long records,
      long rangeCount, Instant firstWrite, Instant lastWrite, List<String> ranges) {}

  /**
   * The old source turned into the replica: {@code salvaged} is what it held that was never
   * replicated (null: nothing), {@code resyncReason} why its disks must be compared block by
   * block rather than trusted to equal the failover point (null: they can be). {@code replica}:
   * what is the replica now when it is not the old copy itself (an object-store site's bucket);
   * null otherwise, and in results recorded before it existed.
   */
  public record ReverseOutcome(Salvaged salvaged, String resyncReason, String replica) {
    public ReverseOutcome(Salvaged salvaged, String resyncReason) {
      this(salvaged, resyncReason, null);
    }
  }

  /** One disk's seed of reverse replication: the ranges changed since the failover. */
  public record SeedResult(long ranges, long bytesSent) {}

  /**
   * What a plan script is told about its step: the plan, the operation, the direction
   * ("primary -> secondary"), the group, and each VM with the NBD exports it runs as there.
   */
  public record ScriptContext(String plan, String operation, String direction, String group,
      List<VmExports> vms) {}

  public record VmExports(String vm, String site, List<String> exports) {}

  /** A plan script's run: exit code, whether it timed out, its output (the last 64 KiB). */
  public record ScriptOutcome(String script, String site, int exitCode, boolean timedOut,
      long durationMillis, String output) {
    public boolean ok() {
      return exitCode == 0 && !timedOut;
    }
  }

  /** Free and total bytes where a site's agent keeps replicas, test clones and change logs. */
  public record SiteStorage(String site, long freeBytes, long totalBytes) {}
}
