package io.siterecovery.agent.undo;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * Layout constants of the undo journal. The byte-level specification is in docs/undo-journal.md;
 * every number is little-endian and every checksum is CRC32C, as in the .hrl format.
 */
public final class UndoFormat {
  public static final byte[] MAGIC = {'S', 'R', 'U', 'N', 'D', 'O', '0', '1'};
  public static final int VERSION = 1;
  public static final int HEADER_SIZE = 64;
  public static final int ENTRY_HEADER_SIZE = 32;
  public static final int TRAILER_SIZE = 32;
  public static final int ENTRY_MAGIC = 0x4F444E55; // "UNDO"
  public static final int TRAILER_MAGIC = 0x444E4555; // "UEND"
  /** The old bytes follow the entry header. */
  public static final short TYPE_DATA = 1;
  /** The old contents of the range read as zeroes; no bytes follow. */
  public static final short TYPE_ZERO = 2;
  /** Upper bound of one entry's length (DATA and ZERO alike). */
  public static final int MAX_ENTRY_LENGTH = 1 << 20;
  /** Granularity at which all-zero old contents are stored as ZERO entries. */
  public static final int ZERO_BLOCK = 64 << 10;

  public static final String SUFFIX = ".undo";
  public static final String PART_SUFFIX = ".undo.part";

  private UndoFormat() {}

  static ByteBuffer allocate(int size) {
    return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
  }

  static int crc(ByteBuffer buffer, int from, int to) {
    CRC32C crc = new CRC32C();
    crc.update(buffer.duplicate().limit(to).position(from));
    return (int) crc.getValue();
  }

  /** {@code disk0-000000000007.undo}: undoes the apply of generation 7 to disk0. */
  public static String fileName(String disk, long generation) {
    return String.format("%s-%012d%s", disk, generation, SUFFIX);
  }

  public static String partName(String disk, long generation) {
    return String.format("%s-%012d%s", disk, generation, PART_SUFFIX);
  }

  /** Returns the generation of a complete undo file of this disk, or -1 (parts included). */
  public static long generationOf(String disk, String fileName) {
    String prefix = disk + "-";
    if (!fileName.startsWith(prefix) || !fileName.endsWith(SUFFIX)) {
      return -1;
    }
    String digits = fileName.substring(prefix.length(), fileName.length() - SUFFIX.length());
    if (digits.length() != 12 || !digits.chars().allMatch(Character::isDigit)) {
      return -1;
    }
    return Long.parseLong(digits);
  }
}
