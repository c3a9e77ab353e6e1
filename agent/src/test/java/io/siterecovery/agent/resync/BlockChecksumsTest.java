package io.siterecovery.agent.resync;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentMessages.BlockDigest;
import io.siterecovery.agent.disk.VirtualDisk;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Random;
import java.util.UUID;
import net.openhft.hashing.LongTupleHashFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * The block digests against a naive reference (read a block into an array, hash it with the
 * library or the JDK) on a sparse image with data, zeroes and a short last block: for every digest,
 * block size, run and thread count the fast paths (direct buffers hashed in place, read-ahead, the
 * known digest of zero blocks, parts on several threads) agree. And the keyed digest is keyed.
 */
class BlockChecksumsTest {
  private static final long MIB = 1L << 20;
  private static final long SEED = 0x5eed_1234_abcdL;

  @TempDir Path tmp;

  /** XXH128 as {@code xxhsum -H2} prints it: the high 64 bits, then the low, big-endian. */
  private static byte[] xxh128(byte[] data, long seed) {
    long[] r = LongTupleHashFunction.xx128(seed).hashBytes(data);
    return ByteBuffer.allocate(16).putLong(r[1]).putLong(r[0]).array();
  }

  private static byte[] reference(Path image, long size, long fromBlock, int count, int blockSize,
      BlockDigest digest, long seed) throws Exception {
    int d = digest.bytes();
    byte[] out = new byte[count * d];
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "r")) {
      for (int i = 0; i < count; i++) {
        long at = (fromBlock + i) * blockSize;
        byte[] block = new byte[(int) Math.min(blockSize, size - at)];
        f.seek(at);
        f.readFully(block);
        byte[] one = digest == BlockDigest.SHA_256 ? BlockChecksums.sha256().digest(block)
            : xxh128(block, seed);
        System.arraycopy(one, 0, out, i * d, d);
      }
    }
    return out;
  }

  private Path sparseImage(long size) throws Exception {
    Path image = tmp.resolve("disk.img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(size);
      Random rnd = new Random(1);
      byte[] data = new byte[(int) MIB];
      for (long at : new long[] {0, 3 * MIB + 100, 70 * MIB, 149 * MIB, size - 300}) {
        if (at >= size) {
          continue;
        }
        rnd.nextBytes(data);
        f.seek(at);
        f.write(data, 0, (int) Math.min(data.length, size - at));
      }
    }
    return image;
  }

  @ParameterizedTest
  @EnumSource(BlockDigest.class)
  void fastPathsAgreeWithANaiveReference(BlockDigest digest) throws Exception {
    long size = 150 * MIB + 512; // three 64 MiB parts at most, and a short last block
    Path image = sparseImage(size);
    int d = digest.bytes();
    try (VirtualDisk disk = new VirtualDisk("disk0", UUID.randomUUID(), image, size)) {
      for (int blockSize : new int[] {4096, 64 << 10, 16 << 20}) {
        int total = (int) BlockChecksums.blockCount(size, blockSize);
        byte[] all = reference(image, size, 0, total, blockSize, digest, SEED);
        for (int threads : new int[] {1, 3}) {
          assertThat(BlockChecksums.compute(disk, 0, total, blockSize, digest, SEED, threads))
              .as("block size %d, %d threads", blockSize, threads).isEqualTo(all);
        }
        int from = total / 3;
        int count = total - from - 1;
        assertThat(BlockChecksums.compute(disk, from, count, blockSize, digest, SEED, 2))
            .isEqualTo(Arrays.copyOfRange(all, from * d, (from + count) * d));
        assertThat(BlockChecksums.compute(disk, total - 1, 1, blockSize, digest, SEED, 1))
            .as("the short last block").isEqualTo(Arrays.copyOfRange(all, (total - 1) * d,
                total * d));
      }
    }
    assertThat(Files.size(image)).isEqualTo(size);
  }

  @Test
  void theKeyedDigestDependsOnTheSeedAndShaDoesNot() throws Exception {
    long size = 4 * MIB;
    Path image = sparseImage(size);
    int blockSize = 64 << 10;
    int count = (int) (size / blockSize);
    try (VirtualDisk disk = new VirtualDisk("disk0", UUID.randomUUID(), image, size)) {
      byte[] a = BlockChecksums.compute(disk, 0, count, blockSize, BlockDigest.XXH3_128, 1, 1);
      byte[] b = BlockChecksums.compute(disk, 0, count, blockSize, BlockDigest.XXH3_128, 2, 1);
      assertThat(a).hasSize(count * 16);
      for (int i = 0; i < count; i++) {
        assertThat(Arrays.copyOfRange(a, i * 16, i * 16 + 16))
            .as("block %d (data and zeroes alike)", i)
            .isNotEqualTo(Arrays.copyOfRange(b, i * 16, i * 16 + 16));
      }
      assertThat(BlockChecksums.compute(disk, 0, count, blockSize, BlockDigest.SHA_256, 1, 1))
          .hasSize(count * 32)
          .isEqualTo(BlockChecksums.compute(disk, 0, count, blockSize, BlockDigest.SHA_256, 2, 1));
    }
  }

  @Test
  void aRunOfBlocksWhoseEndOverflowsIsABadRequest() throws Exception {
    long size = 4 * MIB;
    Path image = sparseImage(size);
    try (VirtualDisk disk = new VirtualDisk("disk0", UUID.randomUUID(), image, size)) {
      for (long from : new long[] {Long.MAX_VALUE - 10, Long.MAX_VALUE, 65, -1}) {
        AgentException e = org.assertj.core.api.Assertions.catchThrowableOfType(
            AgentException.class, () -> BlockChecksums.compute(disk, from, 100, 65536,
                BlockDigest.XXH3_128, 1L));
        assertThat(e).as("from block " + from).isNotNull();
        assertThat(e.code()).isEqualTo(ErrorCode.BAD_REQUEST);
      }
      assertThat(BlockChecksums.compute(disk, 60, 4, 65536, BlockDigest.XXH3_128, 1L))
          .as("the last four blocks").hasSize(4 * 16);
    }
  }

  @Test
  void directAndHeapBuffersHashAlike() {
    byte[] data = new byte[3 * 65536 + 17];
    new Random(5).nextBytes(data);
    ByteBuffer direct = ByteBuffer.allocateDirect(data.length).put(data).flip();
    ByteBuffer heap = ByteBuffer.wrap(data); // no address: the portable path
    assertThat(DirectAddress.of(direct)).as("Unsafe gives the address on this JDK").isNotZero();
    assertThat(DirectAddress.of(heap)).isZero();
    BlockChecksums.BlockHasher hasher = BlockChecksums.hasher(BlockDigest.XXH3_128, SEED);
    byte[] fromDirect = new byte[16];
    byte[] fromHeap = new byte[16];
    hasher.digest(direct, 65536 + 3, 65536 + 14, fromDirect, 0);
    hasher.digest(heap, 65536 + 3, 65536 + 14, fromHeap, 0);
    assertThat(fromDirect).isEqualTo(fromHeap)
        .isEqualTo(xxh128(Arrays.copyOfRange(data, 65536 + 3, 2 * 65536 + 17), SEED));
  }
}
