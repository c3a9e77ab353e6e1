package io.siterecovery.agent.undo;

import io.siterecovery.agent.FaultInjection;
import io.siterecovery.agent.disk.VirtualDisk;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.UUID;
import java.util.zip.CRC32C;

/** Verifies undo files and restores the old contents they hold. */
public final class UndoReader {

  /** A verified undo file: its header fields and where each entry starts. */
  public record Verified(UUID diskId, long generation, long diskSize, long entries,
      long dataBytes, long[] entryPositions) {}

  /** One saved range: {@code oldData} holds its old contents, or is null when they were zeroes. */
  @FunctionalInterface
  public interface EntryVisitor {
    void visit(long offset, int length, ByteBuffer oldData) throws IOException;
  }

  private UndoReader() {}

  /** Checks every checksum, the trailer and that nothing follows it; throws if any fails. */
  public static Verified verify(Path path) throws IOException {
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
      long size = ch.size();
      String name = path.getFileName().toString();
      ByteBuffer h = UndoFormat.allocate(UndoFormat.HEADER_SIZE);
      if (readFully(ch, h, 0) < UndoFormat.HEADER_SIZE) {
        throw new UndoCorruptException(name + ": header truncated");
      }
      h.flip();
      byte[] magic = new byte[8];
      h.get(0, magic);
      if (!Arrays.equals(magic, UndoFormat.MAGIC)) {
        throw new UndoCorruptException(name + ": not an undo file (bad magic)");
      }
      if (h.getInt(60) != UndoFormat.crc(h, 0, 60)) {
        throw new UndoCorruptException(name + ": header checksum mismatch");
      }
      if (h.getInt(8) != UndoFormat.VERSION) {
        throw new UndoCorruptException(name + ": unsupported version " + h.getInt(8));
      }
      UUID diskId = new UUID(h.getLong(16), h.getLong(24));
      long generation = h.getLong(32);
      long diskSize = h.getLong(40);
      CRC32C fileCrc = new CRC32C();
      fileCrc.update(h.duplicate());
      long[] positions = new long[64];
      long entries = 0;
      long dataBytes = 0;
      long pos = UndoFormat.HEADER_SIZE;
      ByteBuffer head = UndoFormat.allocate(UndoFormat.ENTRY_HEADER_SIZE);
      ByteBuffer data = ByteBuffer.allocateDirect(UndoFormat.MAX_ENTRY_LENGTH);
      while (true) {
        head.clear();
        if (readFully(ch, head, pos) < UndoFormat.ENTRY_HEADER_SIZE) {
          throw new UndoCorruptException(name + ": no trailer (incomplete at " + pos + ")");
        }
        head.flip();
        if (head.getInt(0) == UndoFormat.TRAILER_MAGIC) {
          if (head.getInt(28) != UndoFormat.crc(head, 0, 28)) {
            throw new UndoCorruptException(name + ": trailer checksum mismatch");
          }
          if (head.getLong(8) != entries || head.getLong(16) != dataBytes) {
            throw new UndoCorruptException(name + ": trailer counts do not match the entries");
          }
          if (head.getInt(24) != (int) fileCrc.getValue()) {
            throw new UndoCorruptException(name + ": file checksum mismatch");
          }
          if (pos + UndoFormat.TRAILER_SIZE != size) {
            throw new UndoCorruptException(name + ": bytes after the trailer");
          }
          return new Verified(diskId, generation, diskSize, entries, dataBytes,
              Arrays.copyOf(positions, (int) entries));
        }
        int length = checkEntryHeader(name, head, pos, diskSize);
        fileCrc.update(head.duplicate());
        if (head.getShort(4) == UndoFormat.TYPE_DATA) {
          data.clear().limit(length);
          if (readFully(ch, data, pos + UndoFormat.ENTRY_HEADER_SIZE) < length) {
            throw new UndoCorruptException(name + ": entry data truncated at " + pos);
          }
          data.flip();
          checkData(name, data, head.getInt(20), pos);
          fileCrc.update(data.duplicate());
          dataBytes += length;
        } else {
          length = 0;
        }
        if (entries == positions.length) {
          positions = Arrays.copyOf(positions, positions.length * 2);
        }
        positions[(int) entries++] = pos;
        pos += UndoFormat.ENTRY_HEADER_SIZE + length;
      }
    }
  }

  /**
   * Verifies the whole file, then hands every saved range to {@code visitor} in the order they
   * were saved (the ranges of one file are disjoint). {@code disk} must be the file's disk.
   */
  public static long visit(Path path, VirtualDisk disk, EntryVisitor visitor) throws IOException {
    return walk(path, disk, false, null, visitor);
  }

  /**
   * Verifies the whole file, then writes the old contents back to the disk in reverse entry order
   * (the last range saved is restored first) and returns the number of entries restored. The
   * caller makes the image durable. Restoring twice gives the same result.
   */
  public static long restore(Path path, VirtualDisk disk, String crashStep) throws IOException {
    return walk(path, disk, true, crashStep, (offset, length, old) -> {
      if (old == null) {
        disk.zeroAt(offset, length);
      } else {
        disk.writeAt(offset, old);
      }
    });
  }

  /**
   * Every entry of a verified file of {@code disk}, forwards or backwards; each entry's data is
   * checked again as it is read, since the file may have changed since it was verified.
   */
  private static long walk(Path path, VirtualDisk disk, boolean backwards, String crashStep,
      EntryVisitor visitor) throws IOException {
    Verified v = verify(path);
    String name = path.getFileName().toString();
    if (!v.diskId().equals(disk.id()) || v.diskSize() != disk.size()) {
      throw new UndoCorruptException(name + ": undo file of disk " + v.diskId()
          + ", not of " + disk.name() + " (" + disk.id() + ")");
    }
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
      ByteBuffer head = UndoFormat.allocate(UndoFormat.ENTRY_HEADER_SIZE);
      ByteBuffer data = ByteBuffer.allocateDirect(UndoFormat.MAX_ENTRY_LENGTH);
      long[] positions = v.entryPositions();
      for (int n = 0; n < positions.length; n++) {
        long pos = positions[backwards ? positions.length - 1 - n : n];
        head.clear();
        readFully(ch, head, pos);
        head.flip();
        int length = checkEntryHeader(name, head, pos, v.diskSize());
        long offset = head.getLong(8);
        if (head.getShort(4) == UndoFormat.TYPE_ZERO) {
          visitor.visit(offset, length, null);
        } else {
          data.clear().limit(length);
          if (readFully(ch, data, pos + UndoFormat.ENTRY_HEADER_SIZE) < length) {
            throw new UndoCorruptException(name + ": entry data truncated at " + pos);
          }
          data.flip();
          checkData(name, data, head.getInt(20), pos);
          visitor.visit(offset, length, data);
        }
        if (crashStep != null) {
          FaultInjection.reached(crashStep);
        }
      }
    }
    return v.entries();
  }

  private static int checkEntryHeader(String name, ByteBuffer head, long pos, long diskSize)
      throws UndoCorruptException {
    if (head.getInt(0) != UndoFormat.ENTRY_MAGIC
        || head.getInt(24) != UndoFormat.crc(head, 0, 24)) {
      throw new UndoCorruptException(name + ": bad entry header at " + pos);
    }
    short type = head.getShort(4);
    long offset = head.getLong(8);
    int length = head.getInt(16);
    if ((type != UndoFormat.TYPE_DATA && type != UndoFormat.TYPE_ZERO) || offset < 0
        || length < 0 || length > UndoFormat.MAX_ENTRY_LENGTH || offset > diskSize
        || length > diskSize - offset) { // no offset + length: it could overflow past the check
      throw new UndoCorruptException(name + ": entry out of range at " + pos);
    }
    return length;
  }

  private static void checkData(String name, ByteBuffer data, int expected, long pos)
      throws UndoCorruptException {
    CRC32C crc = new CRC32C();
    crc.update(data.duplicate());
    if ((int) crc.getValue() != expected) {
      throw new UndoCorruptException(name + ": data checksum mismatch at " + pos);
    }
  }

  private static int readFully(FileChannel ch, ByteBuffer buffer, long at) throws IOException {
    int total = 0;
    while (buffer.hasRemaining()) {
      int n = ch.read(buffer, at + total);
      if (n < 0) {
        break;
      }
      total += n;
    }
    return total;
  }
}
