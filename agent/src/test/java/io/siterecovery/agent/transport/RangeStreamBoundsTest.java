package io.siterecovery.agent.transport;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.disk.VirtualDisk;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
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

/**
 * Range frames whose numbers would overflow a naive check, or that end early, are refused with
 * TRANSFER_CORRUPT and never written outside the disk; the sender's range arithmetic cannot
 * overflow either.
 */
class RangeStreamBoundsTest {
  private static final int DISK_SIZE = 1 << 20;

  @TempDir Path dir;
  private Path image;
  private VirtualDisk disk;

  @BeforeEach
  void createDisk() throws IOException {
    image = dir.resolve("disk0.img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(DISK_SIZE);
    }
    disk = new VirtualDisk("disk0", UUID.randomUUID(), image, DISK_SIZE);
  }

  @AfterEach
  void closeDisk() throws IOException {
    disk.close();
  }

  /** One frame as the wire format says: u64 offset, u32 length (big-endian), then the data. */
  private static byte[] frame(long offset, int length, int dataBytes) {
    ByteBuffer b = ByteBuffer.allocate(12 + dataBytes).putLong(offset).putInt(length);
    while (b.hasRemaining()) {
      b.put((byte) 0x5A);
    }
    return b.array();
  }

  private static InputStream stream(byte[]... frames) {
    int size = Arrays.stream(frames).mapToInt(f -> f.length).sum();
    ByteBuffer all = ByteBuffer.allocate(size);
    for (byte[] f : frames) {
      all.put(f);
    }
    return new ByteArrayInputStream(all.array());
  }

  private void assertRefused(InputStream frames, String problem) throws IOException {
    assertThatThrownBy(() -> RangeStream.receive(frames, disk))
        .isInstanceOf(AgentException.class)
        .hasMessageContaining(problem)
        .satisfies(e -> assertThat(((AgentException) e).code())
            .isEqualTo(ErrorCode.TRANSFER_CORRUPT));
    assertThat(Files.size(image)).isEqualTo(DISK_SIZE);
  }

  @Test
  void frameWhoseEndOverflowsIsRefused() throws IOException {
    assertRefused(stream(frame(0x7FFFFFFFFFFFF000L, 8192, 8192)), "frame out of range");
  }

  @Test
  void frameAtTwoToTheSixtySecondIsRefused() throws IOException {
    assertRefused(stream(frame(1L << 62, 4096, 4096)), "frame out of range");
  }

  @Test
  void lengthOfAllOnesIsRefusedBeforeAnyDataIsRead() throws IOException {
    assertRefused(stream(frame(0, 0xFFFFFFFF, 0)), "frame out of range");
  }

  @Test
  void frameRunningOnePastTheDiskIsRefused() throws IOException {
    assertRefused(stream(frame(DISK_SIZE - 4095, 4096, 4096)), "frame out of range");
  }

  @Test
  void framesBeforeTheBadOneAreWrittenAndNothingElse() throws IOException {
    assertRefused(stream(frame(DISK_SIZE - 4096, 4096, 4096), frame(-1, 1, 1)),
        "frame out of range");
    byte[] contents = Files.readAllBytes(image);
    assertThat(Arrays.copyOfRange(contents, DISK_SIZE - 4096, DISK_SIZE)).containsOnly(0x5A);
    assertThat(Arrays.copyOfRange(contents, 0, DISK_SIZE - 4096)).containsOnly(0);
  }

  @Test
  void streamEndingInsideAFrameHeaderIsRefused() throws IOException {
    assertRefused(stream(frame(0, 512, 512), new byte[] {0, 0, 0, 0, 0}), "inside a frame header");
  }

  @Test
  void streamEndingInsideFrameDataIsRefused() throws IOException {
    assertRefused(stream(frame(0, 4096, 100)), "inside the data");
  }

  @Test
  void emptyStreamWritesNothing() throws IOException {
    assertThat(RangeStream.receive(stream(), disk)).isZero();
  }

  @Test
  void senderWithLengthToTheEndOfTimeSendsTheRestOfTheDisk() throws IOException {
    disk.writeAt(DISK_SIZE - 1, ByteBuffer.wrap(new byte[] {7}));
    try (RangeStream.Sender sender = new RangeStream.Sender(disk, 4096, Long.MAX_VALUE)) {
      sender.transferTo(OutputStream.nullOutputStream());
      assertThat(sender.nextOffset()).isEqualTo(DISK_SIZE);
      assertThat(sender.bytesRead()).isEqualTo(DISK_SIZE - 4096);
    }
  }

  @Test
  void senderRefusesARangeStartingOutsideTheDisk() {
    assertThatThrownBy(() -> new RangeStream.Sender(disk, DISK_SIZE + 1L, 1))
        .isInstanceOf(IllegalArgumentException.class);
    assertThatThrownBy(() -> new RangeStream.Sender(disk, 0, -1))
        .isInstanceOf(IllegalArgumentException.class);
  }
}
