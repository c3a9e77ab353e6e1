package io.siterecovery.agent.disk;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.hrl.ChangeTracker;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The disk's own range check, behind the NBD server's: a range outside the disk is refused before
 * the change tracker records it, whoever the caller is.
 */
class VirtualDiskRangeTest {
  private static final long SIZE = 1L << 20;

  @TempDir Path tmp;
  private Path image;
  private Path log;
  private VirtualDisk disk;
  private ChangeTracker tracker;

  @BeforeEach
  void trackedDisk() throws IOException {
    image = tmp.resolve("disk0.img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(SIZE);
    }
    UUID id = UUID.randomUUID();
    disk = new VirtualDisk("disk0", id, image, SIZE);
    tracker = ChangeTracker.open(tmp, "disk0", id, SIZE, 1);
    disk.setTracker(tracker);
    try (var files = Files.list(tmp)) {
      log = files.filter(p -> p.toString().endsWith(".hrl")).findFirst().orElseThrow();
    }
  }

  @AfterEach
  void close() throws IOException {
    tracker.close();
    disk.close();
  }

  @ParameterizedTest(name = "offset {0}, length {1}")
  @CsvSource({
      "9223372036854771712, 8192", // offset + length overflows a long
      "-9223372036854771712, 4096", // an unsigned NBD offset of 2^63 or more
      "-1, 1",
      "1044480, 8192", // across the end
      "1048576, 1", // at the end
      "2097152, 4096", // past the end
  })
  void rangesOutsideTheDiskAreRefusedBeforeTheTrackerRecordsThem(long offset, int length)
      throws IOException {
    byte[] imageBefore = Files.readAllBytes(image);
    byte[] logBefore = Files.readAllBytes(log);

    assertThatThrownBy(() -> disk.write(offset, ByteBuffer.allocate(length), true))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("outside the disk");
    assertThatThrownBy(() -> disk.writeZeroes(offset, length, true))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> disk.trim(offset, length, true))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> disk.read(offset, ByteBuffer.allocate(length)))
        .isInstanceOf(IllegalArgumentException.class);

    disk.flush();
    assertThat(tracker.activeRecords()).isZero();
    assertThat(Arrays.mismatch(logBefore, Files.readAllBytes(log))).isEqualTo(-1);
    assertThat(Arrays.mismatch(imageBefore, Files.readAllBytes(image))).isEqualTo(-1);
  }

  @Test
  void rangesUpToTheLastByteAreAccepted() throws IOException {
    byte[] data = new byte[4096];
    Arrays.fill(data, (byte) 0x77);
    disk.write(SIZE - 4096, ByteBuffer.wrap(data), true);
    disk.writeZeroes(0, SIZE - 4096, false);

    ByteBuffer back = ByteBuffer.allocate(4096);
    disk.read(SIZE - 4096, back);
    assertThat(back.array()).isEqualTo(data);
    assertThat(tracker.activeRecords()).isEqualTo(2);
  }

  @Test
  void negativeLengthsAreRefused() {
    assertThatThrownBy(() -> disk.writeZeroes(0, -1, false))
        .isInstanceOf(IllegalArgumentException.class);
    assertThat(tracker.activeRecords()).isZero();
  }
}
