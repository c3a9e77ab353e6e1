package io.siterecovery.agent.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.disk.DirectWriter;
import io.siterecovery.agent.disk.VirtualDisk;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WriteBehindTest {
  private static final int MIB = 1 << 20;

  @TempDir Path tmp;

  private VirtualDisk disk(long size) throws IOException {
    Path image = tmp.resolve("disk0.img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(size);
    }
    return new VirtualDisk("disk0", UUID.randomUUID(), image, size);
  }

  @Test
  void everyFrameHandedOverIsWrittenWhenItCloses() throws IOException {
    long size = 16L * MIB;
    byte[] expected = new byte[(int) size];
    try (VirtualDisk disk = disk(size)) {
      try (DirectWriter writer = DirectWriter.open(disk, MIB);
          WriteBehind behind = new WriteBehind(writer, MIB, 2)) {
        for (int i = 0; i < 16; i += 2) { // more frames than buffers: buffers come back
          byte[] buffer = behind.buffer();
          Arrays.fill(buffer, (byte) (i + 1));
          behind.write((long) i * MIB, buffer, MIB);
          Arrays.fill(expected, i * MIB, (i + 1) * MIB, (byte) (i + 1));
        }
      }
      disk.forceImage();
    }
    assertThat(Files.readAllBytes(tmp.resolve("disk0.img"))).isEqualTo(expected);
  }

  @Test
  void aFailedWriteStopsTheReceiverAndIsReportedOnClose() throws IOException {
    VirtualDisk disk = disk(4L * MIB);
    DirectWriter writer = DirectWriter.open(disk, MIB);
    disk.close(); // unaligned writes go through the disk's own channel, now closed
    WriteBehind behind = new WriteBehind(writer, MIB, 1);
    behind.write(100, behind.buffer(), 10);
    assertThatThrownBy(() -> {
      behind.buffer(); // the buffer comes back only once the write has failed
      behind.buffer();
    }).isInstanceOf(IOException.class).hasMessageContaining("writing a received range failed");
    assertThatThrownBy(behind::close).isInstanceOf(IOException.class);
    writer.close();
  }
}
