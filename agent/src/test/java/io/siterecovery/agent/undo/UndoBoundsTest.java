package io.siterecovery.agent.undo;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.disk.VirtualDisk;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.UUID;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Undo entries whose end would overflow a naive range check are refused, never restored. */
class UndoBoundsTest {
  private static final long SIZE = 1L << 20;
  /** With a length of 8192 this offset overflows to a negative end: it "fits" any disk. */
  private static final long NEAR_MAX = 0x7FFFFFFFFFFFF000L;

  @TempDir Path tmp;
  private Path image;
  private VirtualDisk disk;

  @BeforeEach
  void createDisk() throws IOException {
    image = tmp.resolve("disk0.img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(SIZE);
    }
    disk = new VirtualDisk("disk0", UUID.randomUUID(), image, SIZE);
  }

  @AfterEach
  void closeDisk() throws IOException {
    disk.close();
  }

  /**
   * An undo file with one ZERO entry moved to {@code offset} (length {@code length}) and every
   * checksum made right again, so only the range rule can refuse it.
   */
  private Path undoFileWithZeroEntry(long offset, int length) throws IOException {
    Path file = tmp.resolve(UndoFormat.fileName("disk0", 2));
    try (UndoWriter w = UndoWriter.create(file, disk, 2)) {
      w.save(0, 4096); // the disk reads as zeroes: one ZERO entry
      w.seal();
    }
    int entry = UndoFormat.HEADER_SIZE;
    int trailer = entry + UndoFormat.ENTRY_HEADER_SIZE;
    ByteBuffer b = UndoFormat.allocate(trailer + UndoFormat.TRAILER_SIZE);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
      assertThat(ch.size()).isEqualTo(b.capacity());
      ch.read(b, 0);
    }
    assertThat(b.getShort(entry + 4)).isEqualTo(UndoFormat.TYPE_ZERO);
    b.putLong(entry + 8, offset).putInt(entry + 16, length);
    b.putInt(entry + 24, UndoFormat.crc(b.slice(entry, 32).order(b.order()), 0, 24));
    CRC32C fileCrc = new CRC32C();
    fileCrc.update(b.duplicate().limit(trailer).position(0));
    b.putInt(trailer + 24, (int) fileCrc.getValue());
    b.putInt(trailer + 28, UndoFormat.crc(b.slice(trailer, 32).order(b.order()), 0, 28));
    Files.write(file, b.array());
    return file;
  }

  @Test
  void entryWhoseEndOverflowsIsOutOfRange() throws IOException {
    Path file = undoFileWithZeroEntry(NEAR_MAX, 8192);
    assertThatThrownBy(() -> UndoReader.verify(file))
        .isInstanceOf(UndoCorruptException.class).hasMessageContaining("entry out of range");
    assertThatThrownBy(() -> UndoReader.restore(file, disk, null))
        .isInstanceOf(UndoCorruptException.class).hasMessageContaining("entry out of range");
    assertThat(Files.size(image)).isEqualTo(SIZE);
  }

  @Test
  void entryEndingAtTheLastByteIsRestored() throws IOException {
    Path file = undoFileWithZeroEntry(SIZE - 8192, 8192);
    assertThat(UndoReader.verify(file).entries()).isEqualTo(1);
    assertThat(UndoReader.restore(file, disk, null)).isEqualTo(1);
  }

  @Test
  void saveRefusesARangeWhoseEndOverflows() throws IOException {
    try (UndoWriter w = UndoWriter.create(tmp.resolve("w.undo.part"), disk, 3)) {
      assertThatThrownBy(() -> w.save(NEAR_MAX, 8192))
          .isInstanceOf(IllegalArgumentException.class);
    }
  }
}
