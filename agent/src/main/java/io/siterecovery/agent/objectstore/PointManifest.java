package io.siterecovery.agent.objectstore;

import java.util.List;
import java.util.UUID;

/**
 * A recovery point in the bucket, written after every object it names: per disk, the chunk
 * objects of its base image ({@code chunkGenerations[i]} is chunk i's generation, or
 * {@link #ZERO} for a chunk that reads as zeroes and is not stored) and the .hrl generations to
 * apply on top, in order. A prune rewrites a retained point as a new revision with the same
 * contents from fewer objects. {@code appConsistent}: the point was sealed right after the VM's
 * quiesce hook succeeded (a manifest written before points could be so reads as false).
 */
public record PointManifest(int format, String vmId, long pointId, int revision,
    long createdMillis, List<Disk> disks, boolean appConsistent) {
  public static final int FORMAT = 1;
  public static final long ZERO = -1;

  /**
   * One disk at this point. {@code lastLogGeneration} is the newest .hrl generation folded or
   * listed, so the next log must follow it even after a prune emptied {@code logGenerations}.
   */
  public record Disk(int index, UUID diskId, long size, int chunkSize, long[] chunkGenerations,
      List<Long> logGenerations, long lastLogGeneration) {

    public long chunks() {
      return chunkCount(size, chunkSize);
    }

    public int chunkLength(long chunk) {
      return (int) Math.min(chunkSize, size - chunk * chunkSize);
    }
  }

  public Disk disk(int index) {
    return disks.stream().filter(d -> d.index() == index).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("point " + pointId + " has no disk "
            + index));
  }

  static long chunkCount(long size, int chunkSize) {
    return (size + chunkSize - 1) / chunkSize;
  }
}
