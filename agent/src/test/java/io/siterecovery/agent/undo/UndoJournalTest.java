package io.siterecovery.agent.undo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.testing.UndoFile;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.BitSet;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The undo file format of docs/undo-journal.md, and restores that give back the old bytes. */
class UndoJournalTest {
  private static final int KIB = 1024;
  private static final long MIB = 1L << 20;

  @TempDir Path tmp;
  private final List<VirtualDisk> disks = new ArrayList<>();

  @AfterEach
  void close() throws IOException {
    for (VirtualDisk d : disks) {
      d.close();
    }
  }

  private VirtualDisk disk(String name, long size) throws IOException {
    Path image = tmp.resolve(name + ".img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(size);
    }
    VirtualDisk d = new VirtualDisk(name, UUID.randomUUID(), image, size);
    disks.add(d);
    return d;
  }

  private static ByteBuffer filled(int length, int value) {
    byte[] b = new byte[length];
    Arrays.fill(b, (byte) value);
    return ByteBuffer.wrap(b);
  }

  @Test
  void theLayoutMatchesTheDocumentFieldByField() throws IOException {
    VirtualDisk d = disk("disk0", 2 * MIB);
    d.writeAt(0, filled(64 * KIB, 0x11)); // block 0: data
    // block 1 (64-128 KiB): zeroes
    d.writeAt(128 * KIB, filled(80 * KIB, 0x22)); // blocks 2 and part of 3: data
    d.writeAt(2 * MIB - 4 * KIB, filled(4 * KIB, 0x33));
    long before = Instant.now().toEpochMilli();
    Path file = tmp.resolve(UndoFormat.fileName("disk0", 7));
    try (UndoWriter w = UndoWriter.create(file, d, 7)) {
      w.save(0, 192 * KIB); // -> DATA 0+64K, ZERO 64K+64K, DATA 128K+64K
      w.save(32 * KIB, 128 * KIB); // saved already: nothing new
      w.save(160 * KIB, 64 * KIB); // only 192K-224K is new: data up to 208K, so one DATA run
      w.save(2 * MIB - 4 * KIB, 4 * KIB);
      w.save(MIB, 0); // an empty record saves nothing
      w.seal();
      assertThat(w.entries()).isEqualTo(5);
    }

    UndoFile.Parsed p = UndoFile.parse(file);
    assertThat(p.magic()).isEqualTo("SRUNDO01");
    assertThat(p.version()).isEqualTo(1);
    assertThat(p.headerSize()).isEqualTo(64);
    assertThat(p.diskId()).isEqualTo(d.id());
    assertThat(p.generation()).isEqualTo(7);
    assertThat(p.diskSize()).isEqualTo(2 * MIB);
    assertThat(p.createdMillis()).isBetween(before, Instant.now().toEpochMilli());
    assertThat(p.entries()).extracting(e -> e.type() + " " + e.offset() + "+" + e.length())
        .containsExactly("1 0+65536", "2 65536+65536", "1 131072+65536", "1 196608+32768",
            "1 2093056+4096");
    assertThat(p.entries().get(0).data()).containsOnly(0x11);
    assertThat(p.entries().get(2).data()).containsOnly(0x22);
    byte[] tail = p.entries().get(3).data();
    assertThat(Arrays.copyOfRange(tail, 0, 16 * KIB)).containsOnly(0x22);
    assertThat(Arrays.copyOfRange(tail, 16 * KIB, 32 * KIB)).containsOnly(0);
    assertThat(p.entries().get(4).data()).containsOnly(0x33);
    assertThat(p.trailerEntryCount()).isEqualTo(5);
    assertThat(p.trailerDataBytes()).isEqualTo((64 + 64 + 32 + 4) * KIB);
    assertThat(Files.size(file)).isEqualTo(64 + 5 * 32 + (64 + 64 + 32 + 4) * KIB + 32);

    UndoReader.Verified v = UndoReader.verify(file);
    assertThat(v.entries()).isEqualTo(5);
    assertThat(v.generation()).isEqualTo(7);
  }

  @Test
  void aRestoreGivesBackTheContentsBeforeTheGenerationAndCanBeRepeated() throws IOException {
    Random rnd = new Random(3);
    long size = 8 * MIB;
    VirtualDisk d = disk("disk0", size);
    byte[] original = new byte[(int) size];
    rnd.nextBytes(original);
    Arrays.fill(original, (int) MIB, (int) (3 * MIB), (byte) 0); // a hole
    d.writeAt(0, ByteBuffer.wrap(original));

    // a "log": overlapping writes and zeroes, some larger than an entry
    record Rec(long offset, int length, boolean zero) {}
    List<Rec> log = new ArrayList<>();
    for (int i = 0; i < 200; i++) {
      int length = rnd.nextInt(10) == 0 ? (int) (MIB + rnd.nextInt((int) MIB))
          : 512 * (1 + rnd.nextInt(128));
      long offset = rnd.nextLong(size - length) / 512 * 512;
      log.add(new Rec(offset, length, rnd.nextInt(6) == 0));
    }
    Path file = tmp.resolve("undo");
    BitSet touched = new BitSet();
    try (UndoWriter w = UndoWriter.create(file, d, 2)) {
      for (Rec r : log) {
        w.save(r.offset(), r.length());
        touched.set((int) r.offset(), (int) (r.offset() + r.length()));
      }
      w.seal();
      assertThat(w.dataBytes()).as("each byte saved at most once").isLessThanOrEqualTo(
          touched.cardinality());
    }
    for (Rec r : log) {
      if (r.zero()) {
        d.zeroAt(r.offset(), r.length());
      } else {
        byte[] data = new byte[r.length()];
        rnd.nextBytes(data);
        d.writeAt(r.offset(), ByteBuffer.wrap(data));
      }
    }
    assertThat(read(d)).isNotEqualTo(original);

    UndoReader.restore(file, d, null);
    assertThat(read(d)).isEqualTo(original);
    UndoReader.restore(file, d, null);
    assertThat(read(d)).as("restoring twice is harmless").isEqualTo(original);

    UndoFile.Parsed p = UndoFile.parse(file);
    assertThat(p.entries()).allSatisfy(e -> assertThat(e.length()).isLessThanOrEqualTo((int) MIB));
    assertThat(p.entries()).anySatisfy(e -> assertThat(e.type()).isEqualTo(2));
  }

  @Test
  void everyFlippedByteAndEveryTruncationIsDetected() throws IOException {
    VirtualDisk d = disk("disk0", MIB);
    d.writeAt(0, filled(512, 0x44));
    Path file = tmp.resolve("small.undo");
    try (UndoWriter w = UndoWriter.create(file, d, 3)) {
      w.save(0, KIB); // DATA
      w.save(512 * KIB, 4 * KIB + 100); // ZERO
      w.seal();
    }
    byte[] good = Files.readAllBytes(file);
    Path damaged = tmp.resolve("damaged.undo");
    for (int i = 0; i < good.length; i++) {
      byte[] bad = good.clone();
      bad[i] ^= 0x01;
      Files.write(damaged, bad);
      int at = i;
      assertThatThrownBy(() -> UndoReader.verify(damaged)).as("byte %d flipped", at)
          .isInstanceOf(UndoCorruptException.class);
    }
    for (int length : new int[] {0, 10, 64, 100, good.length - 33, good.length - 1}) {
      Files.write(damaged, Arrays.copyOf(good, length));
      assertThatThrownBy(() -> UndoReader.verify(damaged)).as("cut at %d", length)
          .isInstanceOf(UndoCorruptException.class);
    }
    byte[] longer = Arrays.copyOf(good, good.length + 1);
    Files.write(damaged, longer);
    assertThatThrownBy(() -> UndoReader.verify(damaged)).hasMessageContaining("after the trailer");

    // a sound file is refused for another disk, and nothing is written to it
    VirtualDisk other = disk("disk1", MIB);
    assertThatThrownBy(() -> UndoReader.restore(file, other, null))
        .isInstanceOf(UndoCorruptException.class).hasMessageContaining("disk");
    assertThat(read(other)).containsOnly(0);
  }

  @Test
  void theRangeSetReportsExactlyTheUncoveredParts() {
    Random rnd = new Random(5);
    RangeSet set = new RangeSet();
    BitSet covered = new BitSet();
    for (int i = 0; i < 5000; i++) {
      int start = rnd.nextInt(10_000);
      int end = start + rnd.nextInt(300);
      BitSet expected = new BitSet();
      expected.set(start, end);
      expected.andNot(covered);
      BitSet reported = new BitSet();
      long last = -1;
      for (long[] gap : set.add(start, end)) {
        assertThat(gap[0]).isGreaterThan(last).isLessThan(gap[1]);
        last = gap[1];
        reported.set((int) gap[0], (int) gap[1]);
      }
      assertThat(reported).isEqualTo(expected);
      covered.set(start, end);
    }
    // touching ranges are merged
    assertThat(set.size()).isLessThan(100);
  }

  private static byte[] read(VirtualDisk d) throws IOException {
    ByteBuffer b = ByteBuffer.allocate((int) d.size());
    d.readAt(0, b);
    return b.array();
  }
}
