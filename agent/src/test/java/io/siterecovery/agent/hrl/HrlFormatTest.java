package io.siterecovery.agent.hrl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The .hrl format: round trips, and that no single damaged byte of a sealed log goes unnoticed. */
class HrlFormatTest {
  private static final UUID DISK = UUID.fromString("0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0");
  private static final long DISK_SIZE = 16L << 20;

  @TempDir Path dir;

  private record Change(short type, long offset, byte[] data, int length) {
    static Change write(long offset, byte[] data) {
      return new Change(HrlFormat.TYPE_WRITE, offset, data, data.length);
    }

    static Change zero(long offset, int length) {
      return new Change(HrlFormat.TYPE_ZERO, offset, null, length);
    }
  }

  private static List<Change> sampleChanges() {
    Random random = new Random(42);
    List<Change> changes = new ArrayList<>();
    for (int size : new int[] {1, 511, 4096, 65536, 1 << 20}) {
      byte[] data = new byte[size];
      random.nextBytes(data);
      changes.add(Change.write(random.nextInt((int) (DISK_SIZE - size)), data));
    }
    changes.add(Change.zero(4096, 8192));
    changes.add(Change.write(DISK_SIZE - 4, new byte[] {1, 2, 3, 4})); // ends at the last byte
    return changes;
  }

  private Path writeLog(String name, long generation, List<Change> changes, boolean seal)
      throws IOException {
    Path path = dir.resolve(name);
    HrlWriter writer = HrlWriter.create(path, new HrlHeader(DISK, generation, DISK_SIZE, 1234L));
    for (Change c : changes) {
      if (c.type() == HrlFormat.TYPE_WRITE) {
        writer.appendWrite(c.offset(), ByteBuffer.wrap(c.data()));
      } else {
        writer.appendZero(c.offset(), c.length());
      }
    }
    writer.force();
    if (seal) {
      writer.seal();
    } else {
      writer.close();
    }
    return path;
  }

  private static long expectedSize(List<Change> changes, boolean sealed) {
    long size = HrlFormat.HEADER_SIZE + (sealed ? HrlFormat.TRAILER_SIZE : 0);
    for (Change c : changes) {
      size += HrlFormat.RECORD_HEADER_SIZE + (c.data() != null ? c.length() : 0);
    }
    return size;
  }

  private static long dataBytes(List<Change> changes) {
    return changes.stream().filter(c -> c.data() != null).mapToLong(Change::length).sum();
  }

  @Test
  void writeSealVerifyAndApplyRoundTrip() throws IOException {
    List<Change> changes = sampleChanges();
    Path log = writeLog("disk0-000000000007.hrl", 7, changes, true);

    assertThat(Files.size(log)).isEqualTo(expectedSize(changes, true));
    HrlReader.Scan scan = HrlReader.verifySealed(log);
    assertThat(scan.sealed()).isTrue();
    assertThat(scan.tornReason()).isNull();
    assertThat(scan.records()).isEqualTo(changes.size());
    assertThat(scan.dataBytes()).isEqualTo(dataBytes(changes));
    assertThat(scan.validEnd()).isEqualTo(Files.size(log) - HrlFormat.TRAILER_SIZE);
    assertThat(scan.header()).isEqualTo(new HrlHeader(DISK, 7, DISK_SIZE, 1234L));

    List<Change> visited = new ArrayList<>();
    HrlReader.applySealed(log, r -> {
      byte[] data = null;
      if (!r.isZero()) {
        data = new byte[r.data().remaining()];
        r.data().duplicate().get(data);
      }
      visited.add(new Change(r.type(), r.offset(), data, r.length()));
    });
    assertThat(visited).hasSameSizeAs(changes);
    for (int i = 0; i < changes.size(); i++) {
      Change want = changes.get(i);
      Change got = visited.get(i);
      assertThat(got.type()).as("record %d type", i).isEqualTo(want.type());
      assertThat(got.offset()).as("record %d offset", i).isEqualTo(want.offset());
      assertThat(got.length()).as("record %d length", i).isEqualTo(want.length());
      assertThat(got.data()).as("record %d data", i).isEqualTo(want.data());
    }
  }

  @Test
  void anEmptyLogSealsAndVerifies() throws IOException {
    Path log = writeLog("disk0-000000000001.hrl", 1, List.of(), true);
    assertThat(Files.size(log)).isEqualTo(HrlFormat.HEADER_SIZE + HrlFormat.TRAILER_SIZE);
    HrlReader.Scan scan = HrlReader.verifySealed(log);
    assertThat(scan.records()).isZero();
    assertThat(scan.sealed()).isTrue();
  }

  @Test
  void theBytesOnDiskFollowTheDocumentedLayout() throws IOException {
    byte[] data = {10, 20, 30, 40, 50};
    List<Change> changes = List.of(Change.write(0x0102030405L, data), Change.zero(8192, 4096));
    Path log = writeLog("disk0-000000000003.hrl", 3, changes, true);
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(log)).order(ByteOrder.LITTLE_ENDIAN);

    // header: 64 bytes
    assertThat(Arrays.copyOfRange(b.array(), 0, 8)).isEqualTo("SRHRL001".getBytes());
    assertThat(b.getInt(8)).isEqualTo(1); // version
    assertThat(b.getInt(12)).isEqualTo(64); // header size
    assertThat(new UUID(b.getLong(16), b.getLong(24))).isEqualTo(DISK);
    assertThat(b.getLong(32)).isEqualTo(3); // generation
    assertThat(b.getLong(40)).isEqualTo(DISK_SIZE);
    assertThat(b.getLong(48)).isEqualTo(1234L); // created, ms since the epoch
    assertThat(b.getInt(56)).isZero(); // reserved
    assertThat(b.getInt(60)).isEqualTo(crc32c(b.array(), 0, 60));

    // first record: write of 5 bytes
    int r = 64;
    assertThat(Arrays.copyOfRange(b.array(), r, r + 4)).isEqualTo("RCRD".getBytes());
    assertThat(b.getShort(r + 4)).isEqualTo((short) 1); // WRITE
    assertThat(b.getShort(r + 6)).isZero();
    assertThat(b.getLong(r + 8)).isEqualTo(0x0102030405L);
    assertThat(b.getInt(r + 16)).isEqualTo(5);
    assertThat(b.getInt(r + 20)).isEqualTo(crc32c(data, 0, 5));
    assertThat(b.getInt(r + 24)).isEqualTo(crc32c(b.array(), r, r + 24));
    assertThat(b.getInt(r + 28)).isZero();
    assertThat(Arrays.copyOfRange(b.array(), r + 32, r + 37)).isEqualTo(data);

    // second record: zero range, no payload
    r += 32 + 5;
    assertThat(b.getInt(r)).isEqualTo(HrlFormat.RECORD_MAGIC);
    assertThat(b.getShort(r + 4)).isEqualTo((short) 2); // ZERO
    assertThat(b.getLong(r + 8)).isEqualTo(8192);
    assertThat(b.getInt(r + 16)).isEqualTo(4096);
    assertThat(b.getInt(r + 20)).isZero();
    assertThat(b.getInt(r + 24)).isEqualTo(crc32c(b.array(), r, r + 24));

    // trailer: 32 bytes, the last of the file
    int t = r + 32;
    assertThat(b.capacity()).isEqualTo(t + 32);
    assertThat(Arrays.copyOfRange(b.array(), t, t + 4)).isEqualTo("SEAL".getBytes());
    assertThat(b.getInt(t + 4)).isZero();
    assertThat(b.getLong(t + 8)).isEqualTo(2); // records
    assertThat(b.getLong(t + 16)).isEqualTo(5); // data bytes
    assertThat(b.getInt(t + 24)).isEqualTo(crc32c(b.array(), 0, t)); // everything before it
    assertThat(b.getInt(t + 28)).isEqualTo(crc32c(b.array(), t, t + 28));
  }

  @Test
  void flippingAnySingleByteOfASealedLogIsDetected() throws IOException {
    List<Change> changes = List.of(
        Change.write(512, new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9}),
        Change.zero(0, 512),
        Change.write(4096, new byte[] {9, 9}));
    Path good = writeLog("disk0-000000000002.hrl", 2, changes, true);
    byte[] original = Files.readAllBytes(good);
    HrlReader.verifySealed(good);

    Path damaged = dir.resolve("damaged.hrl");
    for (int i = 0; i < original.length; i++) {
      byte[] copy = original.clone();
      copy[i] ^= 0x01;
      Files.write(damaged, copy);
      int at = i;
      assertThatThrownBy(() -> HrlReader.verifySealed(damaged))
          .as("flipped byte %d of %d", at, original.length)
          .isInstanceOf(HrlCorruptException.class);
      List<HrlRecord> applied = new ArrayList<>();
      assertThatThrownBy(() -> HrlReader.applySealed(damaged, applied::add))
          .isInstanceOf(HrlCorruptException.class);
      assertThat(applied).as("records visited from a log damaged at byte %d", at).isEmpty();
    }
  }

  @Test
  void flippingADataByteInALargeLogIsDetectedAndNothingIsApplied() throws IOException {
    List<Change> changes = sampleChanges();
    Path log = writeLog("disk0-000000000009.hrl", 9, changes, true);
    try (FileChannel ch = FileChannel.open(log, StandardOpenOption.READ, StandardOpenOption.WRITE)) {
      long at = ch.size() - HrlFormat.TRAILER_SIZE - 100; // inside the last record's data
      ByteBuffer one = ByteBuffer.allocate(1);
      ch.read(one, at);
      one.put(0, (byte) (one.get(0) ^ 0x80)).rewind();
      ch.write(one, at);
    }
    List<HrlRecord> applied = new ArrayList<>();
    assertThatThrownBy(() -> HrlReader.applySealed(log, applied::add))
        .isInstanceOf(HrlCorruptException.class);
    assertThat(applied).isEmpty();
  }

  @Test
  void anUnsealedOrTruncatedLogIsNotASealedLog() throws IOException {
    List<Change> changes = sampleChanges();
    Path active = writeLog("disk0-000000000004.hrl", 4, changes, false);
    assertThatThrownBy(() -> HrlReader.verifySealed(active))
        .isInstanceOf(HrlCorruptException.class).hasMessageContaining("not a sealed log");
    HrlReader.Scan scan = HrlReader.scan(active);
    assertThat(scan.sealed()).isFalse();
    assertThat(scan.tornReason()).isNull();
    assertThat(scan.records()).isEqualTo(changes.size());
    assertThat(scan.validEnd()).isEqualTo(Files.size(active));

    Path sealed = writeLog("disk0-000000000005.hrl", 5, changes, true);
    byte[] bytes = Files.readAllBytes(sealed);
    for (int cut : new int[] {1, 16, HrlFormat.TRAILER_SIZE, HrlFormat.TRAILER_SIZE + 1,
        bytes.length - HrlFormat.HEADER_SIZE}) {
      Files.write(sealed, Arrays.copyOf(bytes, bytes.length - cut));
      assertThatThrownBy(() -> HrlReader.verifySealed(sealed))
          .as("cut %d bytes", cut).isInstanceOf(HrlCorruptException.class);
    }
    Files.write(sealed, Arrays.copyOf(bytes, bytes.length + 1)); // a byte after the trailer
    assertThatThrownBy(() -> HrlReader.verifySealed(sealed)).isInstanceOf(HrlCorruptException.class);
    Files.write(sealed, Arrays.copyOf(bytes, HrlFormat.HEADER_SIZE - 1)); // not even a header
    assertThatThrownBy(() -> HrlReader.scan(sealed)).isInstanceOf(HrlCorruptException.class);
  }

  @Test
  void scanStopsAtATornTailAndKeepsTheValidRecords() throws IOException {
    List<Change> changes = sampleChanges();
    Path log = writeLog("disk0-000000000006.hrl", 6, changes, false);
    long valid = Files.size(log);
    byte[] good = Files.readAllBytes(log);

    // a record header whose data never made it to the file
    byte[] partial = withTail(good, recordHeader(HrlFormat.TYPE_WRITE, 0, 4096, 0), new byte[100]);
    Files.write(log, partial);
    assertTorn(log, valid, changes.size(), "partial record data");

    // half a record header
    Files.write(log, withTail(good, Arrays.copyOf(recordHeader(HrlFormat.TYPE_ZERO, 0, 512, 0), 20)));
    assertTorn(log, valid, changes.size(), "partial record header");

    // garbage
    byte[] garbage = new byte[333];
    new Random(1).nextBytes(garbage);
    Files.write(log, withTail(good, garbage));
    assertTorn(log, valid, changes.size(), "bad record header");

    // a complete record whose data checksum is wrong (data half written)
    byte[] header = recordHeader(HrlFormat.TYPE_WRITE, 0, 8, 12345);
    Files.write(log, withTail(good, header, new byte[8]));
    assertTorn(log, valid, changes.size(), "data checksum mismatch");

    // a record that points past the end of the disk
    Files.write(log, withTail(good, recordHeader(HrlFormat.TYPE_ZERO, DISK_SIZE, 512, 0)));
    assertTorn(log, valid, changes.size(), "out of range");

    // a trailer that does not match what precedes it
    byte[] trailer = new byte[32];
    ByteBuffer t = ByteBuffer.wrap(trailer).order(ByteOrder.LITTLE_ENDIAN);
    t.putInt(0, HrlFormat.TRAILER_MAGIC).putLong(8, 1).putLong(16, 1);
    t.putInt(28, crc32c(trailer, 0, 28));
    Files.write(log, withTail(good, trailer));
    assertTorn(log, valid, changes.size(), "trailer counts");
  }

  private static void assertTorn(Path log, long validEnd, long records, String reason)
      throws IOException {
    HrlReader.Scan scan = HrlReader.scan(log);
    assertThat(scan.sealed()).isFalse();
    assertThat(scan.validEnd()).isEqualTo(validEnd);
    assertThat(scan.records()).isEqualTo(records);
    assertThat(scan.tornReason()).contains(reason);
    assertThatThrownBy(() -> HrlReader.verifySealed(log)).isInstanceOf(HrlCorruptException.class);
  }

  @Test
  void fileNamesCarryTheDiskAndATwelveDigitGeneration() {
    assertThat(HrlFormat.fileName("disk0", 1)).isEqualTo("disk0-000000000001.hrl");
    assertThat(HrlFormat.fileName("disk12", 123456789012L)).isEqualTo("disk12-123456789012.hrl");
    assertThat(HrlFormat.generationOf("disk0", "disk0-000000000042.hrl")).isEqualTo(42);
    assertThat(HrlFormat.generationOf("disk1", "disk10-000000000042.hrl")).isEqualTo(-1);
    assertThat(HrlFormat.generationOf("disk0", "disk0-42.hrl")).isEqualTo(-1);
    assertThat(HrlFormat.generationOf("disk0", "disk0-000000000042.hrl.part")).isEqualTo(-1);
    assertThat(HrlFormat.generationOf("disk0", "disk0-00000000004x.hrl")).isEqualTo(-1);
    assertThat(HrlFormat.generationOf("disk0", "disk0.img")).isEqualTo(-1);
  }

  static byte[] recordHeader(short type, long offset, int length, int dataCrc) {
    ByteBuffer h = ByteBuffer.allocate(32).order(ByteOrder.LITTLE_ENDIAN);
    h.putInt(HrlFormat.RECORD_MAGIC).putShort(type).putShort((short) 0).putLong(offset)
        .putInt(length).putInt(dataCrc);
    h.putInt(24, crc32c(h.array(), 0, 24));
    return h.array();
  }

  static byte[] withTail(byte[] head, byte[]... tails) {
    int size = head.length;
    for (byte[] t : tails) {
      size += t.length;
    }
    byte[] all = Arrays.copyOf(head, size);
    int at = head.length;
    for (byte[] t : tails) {
      System.arraycopy(t, 0, all, at, t.length);
      at += t.length;
    }
    return all;
  }

  static int crc32c(byte[] bytes, int from, int to) {
    CRC32C crc = new CRC32C();
    crc.update(bytes, from, to - from);
    return (int) crc.getValue();
  }
}
