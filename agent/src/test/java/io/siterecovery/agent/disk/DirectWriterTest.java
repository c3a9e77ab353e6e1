package io.siterecovery.agent.disk;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DirectWriterTest {
  private static final int MIB = 1 << 20;

  @TempDir Path tmp;

  @Test
  void alignedAndUnalignedWritesBothLandWhereTheySay() throws Exception {
    Path image = tmp.resolve("disk0.img");
    long size = 8L * MIB + 1000; // an odd size: the tail cannot be written with O_DIRECT
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(size);
    }
    byte[] expected = new byte[(int) size];
    Random random = new Random(3);
    try (VirtualDisk disk = new VirtualDisk("disk0", UUID.randomUUID(), image, size);
        DirectWriter writer = DirectWriter.open(disk, MIB)) {
      write(writer, expected, random, 0, MIB);                  // aligned
      write(writer, expected, random, 3L * MIB, MIB);           // aligned, after a hole
      write(writer, expected, random, 5L * MIB + 512, 4096);    // unaligned offset
      write(writer, expected, random, 6L * MIB, 3000);          // unaligned length
      write(writer, expected, random, 8L * MIB, 1000);          // the disk's tail
      disk.writeAt(2L * MIB, java.nio.ByteBuffer.wrap(new byte[] {1, 2, 3}));
      expected[2 * MIB] = 1;
      expected[2 * MIB + 1] = 2;
      expected[2 * MIB + 2] = 3;
      write(writer, expected, random, 2L * MIB, 8192);          // over a buffered write
      disk.forceImage();
    }
    assertThat(Files.readAllBytes(image)).isEqualTo(expected);
  }

  private static void write(DirectWriter writer, byte[] expected, Random random, long offset,
      int length) throws Exception {
    byte[] data = new byte[MIB];
    random.nextBytes(data);
    writer.write(offset, data, length);
    System.arraycopy(data, 0, expected, (int) offset, length);
  }
}
