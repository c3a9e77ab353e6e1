package io.siterecovery.agent.api;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.vm.Names;
import io.siterecovery.agent.vm.VmRecord;
import java.nio.charset.StandardCharsets;
import java.time.Instant;
import java.util.List;

/** The agent API's JSON bodies. */
public final class AgentMessages {
  private AgentMessages() {}

  public record CreateVmRequest(String name, List<Long> diskSizes) {}

  public record PowerRequest(VmRecord.Power state) {}

  public record RoleRequest(VmRecord.Role role) {}

  /**
   * Protect towards {@code targetSite}; the source agent reaches that site at the address in its
   * own configuration, never at one named in a request.
   */
  public record EnableProtectionRequest(String targetSite) {}

  public record ProtectionState(String vm, String targetSite, boolean initialComplete,
      long activeGeneration) {}

  /**
   * How bytes travel from agent to agent. {@code compress}: zstd-compress the body
   * ({@code Content-Encoding: zstd}). {@code bandwidthMBps}: cap on the bytes put on the wire, in
   * megabytes (10^6 bytes) per second, per transfer (one request body); null means no cap. A null
   * {@code TransferOptions} means the defaults: no compression, no cap.
   */
  public record TransferOptions(boolean compress, Double bandwidthMBps) {
    public static final TransferOptions DEFAULT = new TransferOptions(false, null);

    public static TransferOptions orDefault(TransferOptions t) {
      return t == null ? DEFAULT : t;
    }
  }

  /** {@code transfer} may be absent (null): the defaults. */
  /**
   * {@code budgetMillis} (optional): stop early, at a chunk boundary, once this long has passed;
   * the result's {@code nextOffset} says where. The caller heartbeats between calls, so this keeps
   * its heartbeats on time on any link.
   */
  public record CopyRangeRequest(long offset, long length, TransferOptions transfer,
      Long budgetMillis) {
    public CopyRangeRequest(long offset, long length) {
      this(offset, length, null, null);
    }
  }

  public record CopyRangeResult(long offset, long nextOffset, long bytesRead, long bytesSent) {}

  /**
   * Asks for one delta cycle. {@code retentionSeconds}: after applying, the replica drops recovery
   * points older than this relative to the new point (null keeps them all). {@code quiesce}: run
   * the VM's quiesce hook before the swap, to seal an app-consistent point.
   */
  /**
   * One delta cycle's options: prune points older than {@code retentionSeconds} (null keeps
   * all), run the quiesce hook first, and how logs travel ({@code transfer} null: defaults).
   */
  public record ReplicateRequest(Long retentionSeconds, boolean quiesce, TransferOptions transfer) {}

  /**
   * Outcome of one swap-ship-apply cycle; the applied generation is the latest recovery point.
   * {@code appConsistent} and {@code quiesceMessage} describe the generation sealed by this call;
   * the message says why it is only crash-consistent when a quiesce was asked for and did not
   * succeed (null when it succeeded or was not asked for).
   */
  public record ReplicationResult(long lastSealedGeneration, long appliedGeneration,
      Instant pointTime, int logsShipped, long bytesShipped, boolean appConsistent,
      String quiesceMessage) {}

  /**
   * {@code diskBytes}: the sum of the VM's disk sizes (so callers can compare pending log bytes
   * with it). {@code resyncRequiredReason}: why the replica can no longer be trusted to follow the
   * logs (a disk image changed while the agent was down, a sealed log failed verification); null
   * when none. It is cleared when a resync completes. {@code changedSinceFailoverBytes}: what a
   * committed failover changed that reverse replication has not sent yet (0 otherwise).
   */
  public record SourceStatus(String vm, long activeGeneration, int sealedLogs, long pendingBytes,
      long diskBytes, String resyncRequiredReason, long changedSinceFailoverBytes) {}


  /** The generation a resync brings the replica to: every log up to it was discarded. */
  public record ResyncBegin(long generation) {}

  /**
   * How a resync digests each block. {@code XXH3_128}: XXH3's 128-bit hash keyed with the resync's
   * random seed, 16 bytes per block (the default). {@code SHA_256}: unkeyed SHA-256, 32 bytes per
   * block, for a caller that wants a cryptographic hash whatever it costs (about 5x the CPU).
   */
  public enum BlockDigest {
    XXH3_128(16),
    SHA_256(32);

    public static final BlockDigest DEFAULT = XXH3_128;

    private final int bytes;

    BlockDigest(int bytes) {
      this.bytes = bytes;
    }

    /** Digest bytes per block. */
    public int bytes() {
      return bytes;
    }
  }

  /**
   * One step of a disk's resync: blocks {@code [fromBlock, fromBlock + maxBlocks)} of
   * {@code blockSize} bytes (0: the default, 64 KiB) are compared and the differing ones sent.
   * {@code digest} null means {@link BlockDigest#DEFAULT}; steps may differ in it, since each
   * step compares digests taken by both sides with the same function.
   */
  public record ResyncStepRequest(long fromBlock, int maxBlocks, int blockSize,
      TransferOptions transfer, BlockDigest digest) {}

  /** {@code nextBlock} is the cursor to heartbeat and resume from; {@code bytesSent} is data bytes. */
  public record ResyncStepResult(long nextBlock, long totalBlocks, long blocksCompared,
      long blocksDiffering, long bytesSent) {}

  /**
   * Asks a replica for the digests of {@code count} blocks starting at {@code fromBlock}, keyed
   * with {@code seed} (the resync's secret; ignored by SHA-256). A request without
   * {@code digest} comes from a source agent older than keyed digests, which meant SHA-256.
   */
  public record ChecksumRequest(long fromBlock, int count, int blockSize, BlockDigest digest,
      long seed) {}

  /** {@code home}: the site where the VM was created (null: the source site). */
  public record CreateReplicaRequest(String vm, String sourceSite, List<VmRecord.DiskSpec> disks,
      String home) {}

  /**
   * Starts a replica as the VM at retained point {@code generation} after a failover;
   * {@code key} is the caller's idempotency key.
   */
  public record StartReplicaRequest(Long generation, String key) {}

  /**
   * A committed failover: {@code vm} is the primary here now; reverse replication goes to
   * {@code reverseTarget} and starts with the {@code changedBytes} changed since the failover
   * point.
   */
  public record PromoteResult(String vm, String reverseTarget, long changedBytes) {}

  /**
   * Applies a staged generation on the replica; the point is recorded with its seal time and
   * whether the source quiesced before sealing it. {@code retentionSeconds}: then drop points
   * older than this relative to {@code pointTime} (null keeps them all; the newest always stays).
   */
  public record ApplyRequest(long generation, Instant pointTime, boolean appConsistent,
      Long retentionSeconds) {}

  /** Rolls a powered-off replica back to a retained recovery point. */
  public record RollbackRequest(Long generation) {}

  /**
   * Creates the test VM of a replica at retained point {@code generation}. {@code key} is the
   * caller's idempotency key: a retried create finds the clone it made, and a clone made under
   * another key is someone else's test, which this request may not replace.
   */
  public record TestCloneRequest(Long generation, String key) {}

  /**
   * A live test VM: {@code testVm} ({@code <vm>-test}) exported writable as {@code exports}
   * (NBD URIs), at the replica's point {@code generation}. {@code scratchBytes}: what the clone
   * holds apart from the replica (the point's own blocks the replica has since overwritten, and
   * the test VM's writes).
   */
  public record TestCloneInfo(String vm, String testVm, long generation, Instant pointTime,
      String key, Instant createdAt, List<String> exports, long scratchBytes) {}

  /**
   * What a cleanup left: {@code existed} false when there was no test VM; {@code remaining} names
   * whatever could not be removed (an export still served, a file, the inventory entry), empty
   * when nothing remains.
   */
  public record TestCleanupReport(String vm, String testVm, boolean existed,
      List<String> remaining) {}

  /** Makes a VM that failed over elsewhere the replica of {@code newSource}, the active site. */
  public record ReverseRequest(String newSource) {}

  /** One range of salvaged writes. */
  public record SalvagedRange(String disk, long offset, long length) {}

  /**
   * Writes a VM's old source held that never reached its replica, saved on that site under
   * {@code DATA/salvage/<id>/} as the .hrl logs they were tracked in, before reverse replication
   * overwrote them. {@code ranges} lists the first {@link #MAX_LISTED} merged ranges of
   * {@code rangeCount}; {@code firstWrite}..{@code lastWrite} bound when they were written.
   */
  public record SalvageInfo(String id, String vm, String site, Instant savedAt,
      Instant firstWrite, Instant lastWrite, int logs, long records, long bytes, long rangeCount,
      List<SalvagedRange> ranges, String path) {
    public static final int MAX_LISTED = 100;
  }

  /**
   * The old source is now a replica of {@code newSource}, its disks kept as they were;
   * {@code salvage} is what it held that the replica never got (null: nothing).
   * {@code resyncReason}: why its disks may differ from the failover point and must be compared
   * block by block (null: they equal it, and the changed ranges are all that must travel).
   */
  public record ReverseResult(String vm, String newSource, SalvageInfo salvage,
      String resyncReason) {}

  /** Sends the ranges of {@code disk} changed since the failover to the reverse replica. */
  public record SendChangedRequest(String disk, TransferOptions transfer) {}

  public record SendChangedResult(String disk, long ranges, long bytesSent) {}

  /**
   * Whether a peer's copy of {@code vm} must be fenced because the VM runs here (a started or
   * committed failover): asked by an agent at start, before it serves anything.
   */
  public record FenceCheck(String vm, String site, boolean fence, String reason) {}

  /**
   * Runs a recovery plan's script on this agent: the request names the script (in the path) and
   * carries context only, never a command. {@code plan}, {@code operation} (say, failover or
   * test) and {@code group} (absent for an action of the whole plan) are names; {@code direction}
   * free text of at most {@link #MAX_DIRECTION} characters (say, primary->secondary).
   * {@code contextJson}: a JSON object of at most {@link #MAX_CONTEXT_BYTES} bytes (UTF-8), given
   * to the script as a file (the plan, its VMs, their exports: whatever the caller needs the
   * script to know). {@code timeoutSeconds}: 1 to {@link #MAX_TIMEOUT_SECONDS}; the script is
   * killed, with the processes it started, when it runs longer.
   */
  public record ScriptRunRequest(String plan, String operation, String group, String direction,
      String contextJson, Integer timeoutSeconds) {
    public static final int MAX_DIRECTION = 200;
    public static final int MAX_CONTEXT_BYTES = 256 << 10;
    public static final int MAX_TIMEOUT_SECONDS = 3600;

    /**
     * This request if its fields are within bounds (whether {@code contextJson} is a JSON object
     * is the agent's to check); BAD_REQUEST naming the field otherwise. Not a check in the
     * constructor: a body that fails it must be refused with a 400 that says why.
     */
    public ScriptRunRequest validate() {
      Names.requireValid("plan", plan);
      Names.requireValid("operation", operation);
      if (group != null) {
        Names.requireValid("group", group);
      }
      if (direction != null && (direction.length() > MAX_DIRECTION
          || direction.chars().anyMatch(Character::isISOControl))) {
        throw bad("direction must be at most " + MAX_DIRECTION
            + " characters without control characters");
      }
      if (contextJson == null) {
        throw bad("contextJson is required (a JSON object, {} when there is nothing to tell)");
      }
      // At most three UTF-8 bytes per UTF-16 char: count only when it may be over.
      if (contextJson.length() > MAX_CONTEXT_BYTES / 3
          && contextJson.getBytes(StandardCharsets.UTF_8).length > MAX_CONTEXT_BYTES) {
        throw bad("contextJson is over " + MAX_CONTEXT_BYTES + " bytes");
      }
      if (timeoutSeconds == null || timeoutSeconds < 1 || timeoutSeconds > MAX_TIMEOUT_SECONDS) {
        throw bad("timeoutSeconds is required: 1 to " + MAX_TIMEOUT_SECONDS + " (got "
            + timeoutSeconds + ")");
      }
      return this;
    }

    private static AgentException bad(String message) {
      return new AgentException(ErrorCode.BAD_REQUEST, message);
    }
  }

  /**
   * What a plan script did: its exit code (data, not an error: the plan decides what a non-zero
   * code means; -1 when it was killed at its timeout, {@code timedOut} then), how long it ran,
   * and the last {@code 64 KiB} of its output (stdout and stderr as they were interleaved);
   * {@code outputTruncated} says that earlier output was dropped. {@code site}: where it ran.
   */
  public record ScriptRunResult(String script, String site, int exitCode, boolean timedOut,
      long durationMillis, String output, boolean outputTruncated, Instant startedAt) {}

  public record ErrorBody(String code, String message) {}

  /**
   * {@code GET /v1/storage}: the file system of the agent's data directory, where replicas, test
   * clones' overlays and change logs grow. {@code freeBytes}: usable by the agent.
   */
  public record StorageInfo(String site, String dataDir, long freeBytes, long totalBytes) {}
}
