package io.siterecovery.workers.bench;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collection;
import java.util.SplittableRandom;

/** Prepares benchmark disk images directly on their files (never while a benchmark is timed). */
final class DiskFiles {
  private DiskFiles() {}

  /** Fills the first {@code size} bytes with seeded random data. */
  static void fillRandom(Path file, long size, long seed) throws IOException {
    SplittableRandom rnd = new SplittableRandom(seed);
    ByteBuffer buffer = ByteBuffer.allocateDirect(8 << 20).order(ByteOrder.LITTLE_ENDIAN);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE,
        StandardOpenOption.CREATE)) {
      for (long at = 0; at < size; ) {
        buffer.clear();
        LongBuffer longs = buffer.asLongBuffer();
        while (longs.hasRemaining()) {
          longs.put(rnd.nextLong());
        }
        buffer.limit((int) Math.min(buffer.capacity(), size - at));
        while (buffer.hasRemaining()) {
          at += ch.write(buffer, at);
        }
      }
    }
  }

  /**
   * Writes {@code denseBytes} of seeded random data in 1 MiB pieces spread evenly over a disk of
   * {@code size}, the first at offset 0; the rest of the file is left as it was (sparse).
   */
  static void fillSpread(Path file, long size, long denseBytes, long seed) throws IOException {
    long mib = 1 << 20;
    SplittableRandom random = new SplittableRandom(seed);
    byte[] piece = new byte[(int) mib];
    long pieces = denseBytes / mib;
    long stride = size / mib / pieces;
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      for (long i = 0; i < pieces; i++) {
        random.nextBytes(piece);
        ByteBuffer b = ByteBuffer.wrap(piece);
        long at = i * stride * mib;
        while (b.hasRemaining()) {
          at += ch.write(b, at);
        }
      }
      ch.force(false);
    }
  }

  /** Overwrites the target's bytes in place (an agent holding it open sees the new content). */
  static void copyInPlace(Path from, Path to) throws IOException {
    try (FileChannel in = FileChannel.open(from, StandardOpenOption.READ);
        FileChannel out = FileChannel.open(to, StandardOpenOption.WRITE,
            StandardOpenOption.CREATE)) {
      long size = in.size();
      for (long at = 0; at < size; ) {
        at += in.transferTo(at, size - at, out.position(at));
      }
    }
  }

  /** Overwrites each of {@code blocks} (block numbers) with other random data. */
  static void overwriteBlocks(Path file, Collection<Long> blocks, int blockSize,
      SplittableRandom rnd) throws IOException {
    ByteBuffer junk = ByteBuffer.allocate(blockSize).order(ByteOrder.LITTLE_ENDIAN);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      for (long block : blocks) {
        junk.clear();
        while (junk.hasRemaining()) {
          junk.putLong(rnd.nextLong());
        }
        junk.flip();
        long at = block * blockSize;
        while (junk.hasRemaining()) {
          at += ch.write(junk, at);
        }
      }
    }
  }

  /** Writes every dirty page of the host to disk, so that no timed run pays for preparation. */
  static void syncAll() throws IOException, InterruptedException {
    ExternalTool.run(java.util.List.of("sync"));
  }

  static boolean identical(Path a, Path b) throws IOException {
    return java.nio.file.Files.mismatch(a, b) == -1;
  }
}
