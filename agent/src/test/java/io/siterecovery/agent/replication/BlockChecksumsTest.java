package io.siterecovery.agent.replication;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.disk.VirtualDisk;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The block digests against a naive reference (read a block, SHA-256 it) on a sparse image with
 * data, zeroes and a short last block: for every block size, every run and every thread count the
 * fast paths (read-ahead, the known digest of zero blocks, parts on several threads) agree.
 */
class BlockChecksumsTest {
  private static final long MIB = 1L << 20;

  @TempDir Path tmp;

  private static byte[] reference(Path image, long size, long fromBlock, int count, int blockSize)
      throws Exception {
    byte[] out = new byte[count * 32];
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "r")) {
      for (int i = 0; i < count; i++) {
        long at = (fromBlock + i) * blockSize;
        byte[] block = new byte[(int) Math.min(blockSize, size - at)];
        f.seek(at);
        f.readFully(block);
        System.arraycopy(MessageDigest.getInstance("SHA-256").digest(block), 0, out, i * 32, 32);
      }
    }
    return out;
  }

  @Test
  void fastPathsAgreeWithANaiveReference() throws Exception {
    long size = 150 * MIB + 512; // three 64 MiB parts at most, and a short last block
    Path image = tmp.resolve("disk.img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(size);
    }
    try (VirtualDisk disk = new VirtualDisk("disk0", UUID.randomUUID(), image, size)) {
      Random rnd = new Random(1);
      byte[] data = new byte[(int) MIB];
      for (long at : new long[] {0, 3 * MIB + 100, 70 * MIB, 149 * MIB, size - 300}) {
        rnd.nextBytes(data);
        disk.writeAt(at, ByteBuffer.wrap(data, 0, (int) Math.min(data.length, size - at)));
      }
      for (int blockSize : new int[] {4096, 64 << 10, 16 << 20}) {
        int total = (int) BlockChecksums.blockCount(size, blockSize);
        byte[] all = reference(image, size, 0, total, blockSize);
        for (int threads : new int[] {1, 3}) {
          assertThat(BlockChecksums.compute(disk, 0, total, blockSize, threads))
              .as("block size %d, %d threads", blockSize, threads).isEqualTo(all);
        }
        int from = total / 3;
        int count = total - from - 1;
        assertThat(BlockChecksums.compute(disk, from, count, blockSize, 2))
            .isEqualTo(Arrays.copyOfRange(all, from * 32, (from + count) * 32));
        assertThat(BlockChecksums.compute(disk, total - 1, 1, blockSize, 1))
            .as("the short last block").isEqualTo(Arrays.copyOfRange(all, (total - 1) * 32,
                total * 32));
      }
    }
    assertThat(Files.size(image)).isEqualTo(size);
  }
}
