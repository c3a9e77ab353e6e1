package io.siterecovery.agent.hrl;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32C;

/**
 * Layout constants of the .hrl change log. The byte-level specification is in docs/hrl-format.md;
 * every number here is little-endian and every checksum is CRC32C.
 */
public final class HrlFormat {
  public static final byte[] MAGIC = {'S', 'R', 'H', 'R', 'L', '0', '0', '1'};
  public static final int VERSION = 1;
  public static final int HEADER_SIZE = 64;
  public static final int RECORD_HEADER_SIZE = 32;
  public static final int TRAILER_SIZE = 32;
  public static final int RECORD_MAGIC = 0x44524352; // "RCRD"
  public static final int TRAILER_MAGIC = 0x4C414553; // "SEAL"
  public static final short TYPE_WRITE = 1;
  public static final short TYPE_ZERO = 2;
  /** Upper bound of one record's payload; NBD requests are split below this anyway. */
  public static final int MAX_RECORD_LENGTH = 64 << 20;

  private HrlFormat() {}

  /**
   * Whether {@code [offset, offset + length)} lies inside a disk of {@code diskSize} bytes. Written
   * without the sum: a crafted offset near {@code Long.MAX_VALUE} would overflow it to a negative
   * number that passes a plain {@code offset + length <= diskSize}.
   */
  static boolean insideDisk(long offset, long length, long diskSize) {
    return offset >= 0 && length >= 0 && offset <= diskSize && length <= diskSize - offset;
  }

  static ByteBuffer allocate(int size) {
    return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
  }

  static int crc(ByteBuffer buffer, int from, int to) {
    CRC32C crc = new CRC32C();
    crc.update(buffer.duplicate().limit(to).position(from));
    return (int) crc.getValue();
  }

  public static String fileName(String disk, long generation) {
    return String.format("%s-%012d.hrl", disk, generation);
  }

  /** Returns the generation encoded in a log file name of the given disk, or -1. */
  public static long generationOf(String disk, String fileName) {
    String prefix = disk + "-";
    if (!fileName.startsWith(prefix) || !fileName.endsWith(".hrl")) {
      return -1;
    }
    String digits = fileName.substring(prefix.length(), fileName.length() - 4);
    if (digits.length() != 12 || !digits.chars().allMatch(Character::isDigit)) {
      return -1;
    }
    return Long.parseLong(digits);
  }
}
