package io.siterecovery.activities;

import java.time.Duration;

/**
 * How many blocks the next resync step compares, so that each step (checksums on both sides, then
 * the differing blocks on the wire) lasts about {@link #TARGET}: the activity heartbeats between
 * steps, and must do so well within its heartbeat timeout on any link. Sized from the last step's
 * time per block, growing at most fourfold a step (the disk's next region may differ more); with
 * a bandwidth cap, never more blocks than the cap moves in {@link #TARGET} if every one differs.
 */
final class ResyncStepSizer {
  static final Duration TARGET = Duration.ofSeconds(3);
  static final int MIN_BLOCKS = 16;
  static final int MAX_BLOCKS = 4096;
  private static final int START_BLOCKS = 64;

  private final int capBlocks;
  private int next;

  ResyncStepSizer(int blockSize, Double bandwidthMBps) {
    capBlocks = bandwidthMBps == null ? MAX_BLOCKS : clamp(bandwidthMBps * 1e6
        * TARGET.toSeconds() / blockSize);
    next = Math.min(START_BLOCKS, capBlocks);
  }

  int nextBlocks() {
    return next;
  }

  /** The last step compared {@code blocks} in {@code nanos}. */
  void measured(long blocks, long nanos) {
    if (blocks <= 0) {
      return;
    }
    double ideal = (double) TARGET.toNanos() * blocks / Math.max(1, nanos);
    next = Math.min(capBlocks, clamp(Math.min(ideal, 4.0 * next)));
  }

  private static int clamp(double blocks) {
    return (int) Math.max(MIN_BLOCKS, Math.min(MAX_BLOCKS, blocks));
  }
}
