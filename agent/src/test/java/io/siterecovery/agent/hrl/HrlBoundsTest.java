package io.siterecovery.agent.hrl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.UUID;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Records whose numbers would overflow a naive range check, or claim more than the file holds,
 * are refused by every reader, and the tracker never writes one.
 */
class HrlBoundsTest {
  private static final UUID DISK = UUID.fromString("5a1c2d3e-4f50-6172-8394-a5b6c7d8e9f0");
  private static final long DISK_SIZE = 1L << 30; // above MAX_RECORD_LENGTH
  /** With a length of 8192 this offset overflows to a negative end: it "fits" any disk. */
  private static final long NEAR_MAX = 0x7FFFFFFFFFFFF000L;

  @TempDir Path dir;

  /** A log whose checksums are all right, so only the range rules can refuse its record. */
  private Path sealedLogWith(long offset, int dataLength, boolean zero) throws IOException {
    Path path = dir.resolve("disk0-000000000001.hrl");
    try (HrlWriter w = HrlWriter.create(path, new HrlHeader(DISK, 1, DISK_SIZE, 1L))) {
      if (zero) {
        w.appendZero(offset, dataLength);
      } else {
        w.appendWrite(offset, ByteBuffer.allocate(dataLength));
      }
      w.seal();
    }
    return path;
  }

  private void assertRefusedEverywhere(Path log, String reason) throws IOException {
    assertThat(HrlReader.scan(log).tornReason()).startsWith(reason);
    assertThat(HrlReader.scan(log).validEnd()).isEqualTo(HrlFormat.HEADER_SIZE);
    assertThatThrownBy(() -> HrlReader.verifySealed(log))
        .isInstanceOf(HrlCorruptException.class).hasMessageContaining(reason);
    try (FileChannel out = FileChannel.open(dir.resolve("received"), StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      ByteArrayInputStream in = new ByteArrayInputStream(Files.readAllBytes(log));
      assertThatThrownBy(() -> HrlReceiver.receive(in, out))
          .isInstanceOf(HrlCorruptException.class).hasMessageContaining(reason);
    }
  }

  @Test
  void writeWhoseEndOverflowsIsOutOfRange() throws IOException {
    assertRefusedEverywhere(sealedLogWith(NEAR_MAX, 8192, false), "record out of range");
  }

  @Test
  void zeroRangeWhoseEndOverflowsIsOutOfRange() throws IOException {
    assertRefusedEverywhere(sealedLogWith(Long.MAX_VALUE - 100, Integer.MAX_VALUE, true),
        "record out of range");
  }

  @Test
  void rangeStartingPastTheDiskIsOutOfRange() throws IOException {
    assertRefusedEverywhere(sealedLogWith(DISK_SIZE + 1, 1, true), "record out of range");
  }

  @Test
  void rangeEndingAtTheLastByteIsAccepted() throws IOException {
    Path log = sealedLogWith(DISK_SIZE - 8192, 8192, false);
    assertThat(HrlReader.verifySealed(log).records()).isEqualTo(1);
  }

  /** Rewrites the length field of the first record and makes its header checksum right again. */
  private static void setFirstLength(Path log, int length) throws IOException {
    try (FileChannel ch = FileChannel.open(log, StandardOpenOption.READ,
        StandardOpenOption.WRITE)) {
      ByteBuffer head = ByteBuffer.allocate(HrlFormat.RECORD_HEADER_SIZE)
          .order(ByteOrder.LITTLE_ENDIAN);
      ch.read(head, HrlFormat.HEADER_SIZE);
      head.putInt(16, length);
      head.putInt(24, HrlFormat.crc(head, 0, 24));
      ch.write(head.flip(), HrlFormat.HEADER_SIZE);
    }
  }

  @Test
  void lengthOfAllOnesIsNegativeAndOutOfRange() throws IOException {
    Path log = sealedLogWith(0, 16, false);
    setFirstLength(log, 0xFFFFFFFF);
    assertRefusedEverywhere(log, "record out of range");
  }

  @Test
  void writeClaimingMoreDataThanTheFileHoldsIsTorn() throws IOException {
    Path log = sealedLogWith(0, 16, false);
    setFirstLength(log, HrlFormat.MAX_RECORD_LENGTH); // 64 MiB in a file of about 150 bytes
    assertThat(HrlReader.scan(log).tornReason()).startsWith("partial record data");
    assertThatThrownBy(() -> HrlReader.verifySealed(log))
        .isInstanceOf(HrlCorruptException.class).hasMessageContaining("partial record data");
  }

  @Test
  void writeLongerThanTheRecordLimitIsOutOfRange() throws IOException {
    Path log = sealedLogWith(0, 16, false);
    setFirstLength(log, HrlFormat.MAX_RECORD_LENGTH + 1);
    assertRefusedEverywhere(log, "record out of range");
  }

  private Path logWithHeader(long generation, long diskSize) throws IOException {
    Path path = dir.resolve("header.hrl");
    ByteBuffer b = new HrlHeader(DISK, 1, 0, 1L).encode();
    b.putLong(32, generation).putLong(40, diskSize);
    CRC32C crc = new CRC32C();
    crc.update(b.duplicate().limit(60));
    b.putInt(60, (int) crc.getValue());
    Files.write(path, b.array());
    return path;
  }

  @Test
  void headerWithNegativeDiskSizeIsCorrupt() throws IOException {
    Path log = logWithHeader(1, -1);
    assertThatThrownBy(() -> HrlReader.scan(log))
        .isInstanceOf(HrlCorruptException.class).hasMessageContaining("header out of range");
  }

  @Test
  void headerWithGenerationZeroIsCorrupt() throws IOException {
    Path log = logWithHeader(0, DISK_SIZE);
    assertThatThrownBy(() -> HrlReader.scan(log))
        .isInstanceOf(HrlCorruptException.class).hasMessageContaining("header out of range");
  }

  @Test
  void trackerRefusesChangesOutsideTheDiskAndKeepsItsLogReadable() throws IOException {
    ChangeTracker tracker = ChangeTracker.open(dir, "disk0", DISK, DISK_SIZE, 1);
    try {
      assertThatThrownBy(() -> tracker.recordWrite(NEAR_MAX, ByteBuffer.allocate(8192)))
          .isInstanceOf(IOException.class).hasMessageContaining("outside the disk");
      assertThatThrownBy(() -> tracker.recordZero(NEAR_MAX, 8192))
          .isInstanceOf(IOException.class).hasMessageContaining("outside the disk");
      assertThatThrownBy(() -> tracker.recordZero(0, -1))
          .isInstanceOf(IOException.class).hasMessageContaining("outside the disk");
      tracker.recordWrite(DISK_SIZE - 1, ByteBuffer.allocate(1));
      long sealed = tracker.swap();
      HrlReader.Scan scan = HrlReader.verifySealed(dir.resolve(HrlFormat.fileName("disk0", sealed)));
      assertThat(scan.records()).isEqualTo(1);
    } finally {
      tracker.close();
    }
  }
}
