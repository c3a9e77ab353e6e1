package io.siterecovery.agent.api;

import java.util.List;

/** Requests and answers of the routes that replicate a VM to an object-store site. */
public final class BucketMessages {
  private BucketMessages() {}

  /**
   * One bounded step of the initial copy: it works for about {@code budgetMillis} (null: 3 s)
   * and uploads at most {@code bandwidthMBps} (decimal MB/s; null: no cap).
   */
  public record BucketInitialRequest(Long budgetMillis, Double bandwidthMBps) {}

  /**
   * Where the initial copy stands after a step: {@code doneChunks} of {@code totalChunks} are
   * durable in the bucket (stored, or all zero and recorded), {@code skippedChunks} of them were
   * found durable from an earlier call and not sent again, {@code chunksSent} and
   * {@code bytesSent} (sealed) went up in this call. {@code finished} once the first recovery
   * point is committed; {@code pointId} is its id then.
   */
  public record BucketInitialProgress(String vm, String site, String bucketVmId, long doneChunks,
      long totalChunks, long doneBytes, long totalBytes, long skippedChunks, long chunksSent,
      long bytesSent, boolean finished, Long pointId) {}

  /**
   * A delta cycle's upload cap (decimal MB/s; null: no cap) and whether to run the VM's quiesce
   * hook before sealing, for an app-consistent point (null: no).
   */
  public record BucketCycleRequest(Double bandwidthMBps, Boolean quiesce) {
    public BucketCycleRequest(Double bandwidthMBps) {
      this(bandwidthMBps, null);
    }
  }

  /**
   * A committed delta cycle: its point, the .hrl generation sealed, the logs and bytes sent;
   * {@code appConsistent} when the point was sealed right after the quiesce hook succeeded, else
   * {@code quiesceMessage} says why not (null when no quiesce was asked for).
   */
  public record BucketCycleResult(String vm, String site, long pointId, long sealedGeneration,
      int logsShipped, long bytesShipped, boolean appConsistent, String quiesceMessage) {
    public BucketCycleResult(String vm, String site, long pointId, long sealedGeneration,
        int logsShipped, long bytesShipped) {
      this(vm, site, pointId, sealedGeneration, logsShipped, bytesShipped, false, null);
    }
  }

  /**
   * One bounded step of a resync towards an object-store site, with the bounds of
   * {@link BucketInitialRequest}.
   */
  public record BucketResyncRequest(Long budgetMillis, Double bandwidthMBps) {}

  /**
   * Where a resync stands after a step: {@code doneChunks} of {@code totalChunks} are compared
   * (and, where they differed, stored), {@code differingChunks} of them differed from the bucket's
   * latest point (or could not be read from it), {@code bytesDownloaded} (sealed: chunks and
   * logs read back) and {@code bytesSent} (sealed chunks) in this call. {@code generation} is the
   * .hrl generation the resync sealed; {@code finished} once its point is committed, then
   * {@code pointId} is that point. {@code skippedChunks}: compared by earlier calls, not again;
   * {@code chunksSent}: stored in this call.
   */
  public record BucketResyncProgress(String vm, String site, long doneChunks, long totalChunks,
      long differingChunks, long bytesDownloaded, long bytesSent, boolean finished, Long pointId,
      long generation, long skippedChunks, long chunksSent) {}

  /** A recovery point in the bucket; app-consistent when sealed right after a quiesce. */
  public record BucketPoint(long pointId, int revision, long createdMillis,
      boolean appConsistent) {
    public BucketPoint(long pointId, int revision, long createdMillis) {
      this(pointId, revision, createdMillis, false);
    }
  }

  /**
   * A VM's points in a bucket, oldest first, and {@code disks}: the disks of the latest one, named
   * as a VM recovered from it exports them ({@code disk<index>}); empty when there is no point.
   */
  public record BucketPoints(String vm, String site, String bucketVmId, List<BucketPoint> points,
      List<BucketDisk> disks) {
    public BucketPoints(String vm, String site, String bucketVmId, List<BucketPoint> points) {
      this(vm, site, bucketVmId, points, List.of());
    }
  }

  /** A disk of a point in a bucket: its name on a recovered VM and its size. */
  public record BucketDisk(String name, long sizeBytes) {}

  /** The points to keep; every point from the oldest listed on is kept (see the docs). */
  public record BucketPruneRequest(List<Long> keep) {}

  public record BucketPruneResult(String vm, String site, List<Long> droppedPoints,
      List<Long> keptPoints, int chunksWritten, int objectsDeleted) {}

  /**
   * An object-store site this agent is configured for, as a worker may check it: never its
   * credentials or key, only the key's fingerprint.
   */
  public record ObjectStoreInfo(String site, String endpoint, String region, String bucket,
      String prefix, String keyId, int chunkSize) {}

  /**
   * A protection taking up its VM's points in a bucket again ({@code reattached}), or not because
   * its initial copy there is under way; {@code points}: how many the bucket holds.
   */
  public record BucketReattachResult(String vm, String site, boolean reattached, int points) {}
}
