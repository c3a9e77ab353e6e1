package io.siterecovery.agent.hrl;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/** Reads and verifies logs: every record's checksums, and for sealed logs the trailer. */
public final class HrlReader {

  /** What a scan found; {@code tornReason} is null when the file ended cleanly. */
  public record Scan(HrlHeader header, long validEnd, long records, long dataBytes,
      boolean sealed, CRC32C fileCrc, String tornReason) {}

  @FunctionalInterface
  public interface RecordVisitor {
    /** The record's data buffer is only valid during the call. */
    void visit(HrlRecord record) throws IOException;
  }

  private HrlReader() {}

  /** Scans a log that may be active or torn, as on agent restart. */
  public static Scan scan(Path path) throws IOException {
    return read(path, null, false);
  }

  /**
   * Visits the records of a log that may be active or torn, up to its last valid record: what a
   * log holds when it is read for its contents rather than applied.
   */
  public static Scan visitTolerant(Path path, RecordVisitor visitor) throws IOException {
    return read(path, visitor, false);
  }

  /** Verifies a sealed log completely, then visits its records; a bad log is never visited. */
  public static Scan verifySealed(Path path) throws IOException {
    return read(path, null, true);
  }

  public static Scan applySealed(Path path, RecordVisitor visitor) throws IOException {
    verifySealed(path);
    return read(path, visitor, true);
  }

  /**
   * Visits the records of a sealed log while verifying it, in one read: records before a bad one
   * are visited before the call fails, so the visitor's work must be worthless until it returns
   * (e.g. undo data that is only kept once complete). Half the reading of {@link #applySealed}.
   */
  public static Scan visitVerifying(Path path, RecordVisitor visitor) throws IOException {
    return read(path, visitor, true);
  }

  private static Scan read(Path path, RecordVisitor visitor, boolean requireSealed)
      throws IOException {
    try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
      long size = ch.size();
      ByteBuffer headerBytes = HrlFormat.allocate(HrlFormat.HEADER_SIZE);
      if (readFully(ch, headerBytes, 0) < HrlFormat.HEADER_SIZE) {
        throw new HrlCorruptException(path.getFileName() + ": header truncated");
      }
      headerBytes.flip();
      HrlHeader header = HrlHeader.decode(headerBytes);
      CRC32C fileCrc = new CRC32C();
      fileCrc.update(headerBytes.duplicate());
      long pos = HrlFormat.HEADER_SIZE;
      long records = 0;
      long dataBytes = 0;
      ByteBuffer head = HrlFormat.allocate(HrlFormat.RECORD_HEADER_SIZE);
      // direct: a heap buffer would be copied through a temporary direct one by every read
      ByteBuffer data = ByteBuffer.allocateDirect(1 << 20);
      String torn = null;
      boolean sealed = false;
      while (true) {
        if (pos == size) {
          torn = null;
          break;
        }
        head.clear();
        if (readFully(ch, head, pos) < HrlFormat.RECORD_HEADER_SIZE) {
          torn = "partial record header at " + pos;
          break;
        }
        head.flip();
        int magic = head.getInt(0);
        if (magic == HrlFormat.TRAILER_MAGIC) {
          String problem = checkTrailer(head, records, dataBytes, fileCrc);
          if (problem == null && pos + HrlFormat.TRAILER_SIZE == size) {
            sealed = true;
          } else {
            torn = problem != null ? problem : "bytes after trailer";
          }
          break;
        }
        String problem = recordHeaderProblem(head, header);
        if (problem != null) {
          torn = problem + " at " + pos;
          break;
        }
        short type = head.getShort(4);
        long offset = head.getLong(8);
        int length = head.getInt(16);
        int dataCrc = head.getInt(20);
        ByteBuffer payload = null;
        if (type == HrlFormat.TYPE_WRITE) {
          // Checked before the buffer grows: a damaged length must not cost 64 MiB of memory
          // when the file does not even hold that many bytes.
          if (length > size - pos - HrlFormat.RECORD_HEADER_SIZE) {
            torn = "partial record data at " + pos;
            break;
          }
          if (data.capacity() < length) {
            data = ByteBuffer.allocateDirect(length);
          }
          data.clear().limit(length);
          if (readFully(ch, data, pos + HrlFormat.RECORD_HEADER_SIZE) < length) {
            torn = "partial record data at " + pos;
            break;
          }
          data.flip();
          CRC32C crc = new CRC32C();
          crc.update(data.duplicate());
          if ((int) crc.getValue() != dataCrc) {
            torn = "data checksum mismatch at " + pos;
            break;
          }
          payload = data;
        }
        fileCrc.update(head.duplicate());
        if (payload != null) {
          fileCrc.update(payload.duplicate());
        }
        if (visitor != null) {
          visitor.visit(new HrlRecord(type, offset, length, payload));
        }
        records++;
        pos += HrlFormat.RECORD_HEADER_SIZE + (payload != null ? length : 0);
        if (payload != null) {
          dataBytes += length;
        }
      }
      if (requireSealed && !sealed) {
        throw new HrlCorruptException(path.getFileName() + ": not a sealed log ("
            + (torn == null ? "no trailer" : torn) + ")");
      }
      return new Scan(header, pos, records, dataBytes, sealed, fileCrc, torn);
    }
  }

  /** Why a record header (not a trailer) is invalid for a log of this header, or null. */
  static String recordHeaderProblem(ByteBuffer head, HrlHeader header) {
    if (head.getInt(0) != HrlFormat.RECORD_MAGIC || head.getInt(24) != HrlFormat.crc(head, 0, 24)) {
      return "bad record header";
    }
    short type = head.getShort(4);
    long offset = head.getLong(8);
    int length = head.getInt(16);
    if (!HrlFormat.insideDisk(offset, length, header.diskSize())
        || (type != HrlFormat.TYPE_WRITE && type != HrlFormat.TYPE_ZERO)
        || (type == HrlFormat.TYPE_WRITE && length > HrlFormat.MAX_RECORD_LENGTH)) {
      return "record out of range";
    }
    return null;
  }

  static String checkTrailer(ByteBuffer t, long records, long dataBytes, CRC32C fileCrc) {
    if (t.getInt(28) != HrlFormat.crc(t, 0, 28)) {
      return "trailer checksum mismatch";
    }
    if (t.getLong(8) != records || t.getLong(16) != dataBytes) {
      return "trailer counts do not match the records";
    }
    if (t.getInt(24) != (int) fileCrc.getValue()) {
      return "file checksum mismatch";
    }
    return null;
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
