package io.siterecovery.agent.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.BlockDigest;
import io.siterecovery.agent.api.AgentMessages.ResyncStepRequest;
import io.siterecovery.agent.api.AgentMessages.ResyncStepResult;
import io.siterecovery.agent.api.AgentMessages.TransferOptions;
import java.util.function.LongConsumer;

/**
 * Drives a disk's resync as the activity would: steps from a block cursor to the end of the disk,
 * keeping the cursor as its heartbeat, and adds up what the steps report.
 */
public final class ResyncRun {
  /** Sums over the steps taken; {@code cursor} is the last heartbeat (the next block to do). */
  public record Totals(long cursor, long totalBlocks, long steps, long blocksCompared,
      long blocksDiffering, long bytesSent) {
    Totals plus(ResyncStepResult r) {
      return new Totals(r.nextBlock(), r.totalBlocks(), steps + 1,
          blocksCompared + r.blocksCompared(), blocksDiffering + r.blocksDiffering(),
          bytesSent + r.bytesSent());
    }
  }

  private ResyncRun() {}

  /** Steps from {@code from} to the end of the disk; {@code between} runs after each step. */
  public static Totals disk(AgentClient source, String vm, String disk, long from, int maxBlocks,
      int blockSize, TransferOptions transfer, LongConsumer between) {
    return disk(source, vm, disk, from, maxBlocks, blockSize, transfer, null, between);
  }

  /** The same with the given block digest (null: the agent's default). */
  public static Totals disk(AgentClient source, String vm, String disk, long from, int maxBlocks,
      int blockSize, TransferOptions transfer, BlockDigest digest, LongConsumer between) {
    return steps(source, vm, disk, from, maxBlocks, blockSize, transfer, digest, Long.MAX_VALUE,
        between);
  }

  /** At most {@code maxSteps} steps from {@code from}. */
  public static Totals steps(AgentClient source, String vm, String disk, long from, int maxBlocks,
      int blockSize, TransferOptions transfer, long maxSteps, LongConsumer between) {
    return steps(source, vm, disk, from, maxBlocks, blockSize, transfer, null, maxSteps, between);
  }

  private static Totals steps(AgentClient source, String vm, String disk, long from,
      int maxBlocks, int blockSize, TransferOptions transfer, BlockDigest digest, long maxSteps,
      LongConsumer between) {
    Totals totals = new Totals(from, -1, 0, 0, 0, 0);
    long cursor = from;
    while (totals.steps() < maxSteps) {
      ResyncStepResult r = source.resyncStep(vm, disk,
          new ResyncStepRequest(cursor, maxBlocks, blockSize, transfer, digest));
      assertThat(r.nextBlock()).as("the cursor moves forward").isGreaterThanOrEqualTo(cursor);
      assertThat(r.blocksCompared()).isEqualTo(r.nextBlock() - cursor);
      totals = totals.plus(r);
      cursor = r.nextBlock();
      if (between != null) {
        between.accept(cursor);
      }
      if (cursor >= r.totalBlocks()) {
        break;
      }
    }
    return totals;
  }
}
