package io.siterecovery.agent.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Random;
import java.util.TreeSet;

/** Damages a replica image behind the agent's back: what a resync has to find and repair. */
public final class Divergence {
  private Divergence() {}

  /** Picks {@code count} distinct block numbers below {@code totalBlocks}. */
  public static TreeSet<Long> pickBlocks(Random rnd, long totalBlocks, int count) {
    TreeSet<Long> blocks = new TreeSet<>();
    while (blocks.size() < count) {
      blocks.add((long) rnd.nextInt((int) totalBlocks));
    }
    return blocks;
  }

  /**
   * Changes every given block of the image: most get random bytes over a random part of the
   * block, every third only one flipped byte (the smallest difference a checksum must see).
   */
  public static void inject(Path image, Iterable<Long> blocks, int blockSize, Random rnd)
      throws IOException {
    try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ,
        StandardOpenOption.WRITE)) {
      long size = ch.size();
      int i = 0;
      for (long block : blocks) {
        long start = block * blockSize;
        int length = (int) Math.min(blockSize, size - start);
        if (i++ % 3 == 0) {
          long at = start + rnd.nextInt(length);
          ByteBuffer one = ByteBuffer.allocate(1);
          ch.read(one, at);
          one.flip();
          byte b = one.get(0);
          ch.write(ByteBuffer.wrap(new byte[] {(byte) (b ^ 0x01)}), at);
        } else {
          int from = rnd.nextInt(length);
          byte[] junk = new byte[1 + rnd.nextInt(length - from)];
          rnd.nextBytes(junk);
          ByteBuffer first = ByteBuffer.allocate(1);
          ch.read(first, start + from);
          junk[0] = (byte) (first.get(0) ^ (1 + rnd.nextInt(255))); // surely different
          ch.write(ByteBuffer.wrap(junk), start + from);
        }
      }
      ch.force(false);
    }
  }
}
