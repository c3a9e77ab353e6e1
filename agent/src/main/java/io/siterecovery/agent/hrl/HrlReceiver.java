package io.siterecovery.agent.hrl;

import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.util.zip.CRC32C;

/**
 * Receives a sealed log from a stream into a file and verifies it as the bytes pass: the header,
 * every record header and data checksum, the trailer's counts and the file checksum, and that
 * nothing follows the trailer. The file gets the bytes exactly as received. Checking on the way
 * in, rather than reading the written file back, saves one full read of every shipped log.
 */
public final class HrlReceiver {
  private static final int CHUNK = 1 << 20;

  private enum Part { HEADER, RECORD_HEADER, DATA, END }

  private final ByteBuffer fixed = HrlFormat.allocate(HrlFormat.HEADER_SIZE);
  private final CRC32C fileCrc = new CRC32C();
  private final CRC32C dataCrc = new CRC32C();
  private Part part = Part.HEADER;
  private HrlHeader header;
  private long position;
  private long recordStart;
  private long dataRemaining;
  private int expectedDataCrc;
  private long records;
  private long dataBytes;

  private HrlReceiver() {
    fixed.limit(HrlFormat.HEADER_SIZE);
  }

  /**
   * Copies {@code in} to {@code out} from its current position and returns the log's header.
   * Throws {@link HrlCorruptException} at the first byte that breaks the format or when the
   * stream ends before a valid trailer; the file then holds what arrived and must be discarded.
   */
  public static HrlHeader receive(InputStream in, FileChannel out) throws IOException {
    HrlReceiver receiver = new HrlReceiver();
    byte[] chunk = new byte[CHUNK];
    int n;
    while ((n = in.readNBytes(chunk, 0, CHUNK)) > 0) {
      receiver.check(chunk, n);
      ByteBuffer b = ByteBuffer.wrap(chunk, 0, n);
      while (b.hasRemaining()) {
        out.write(b);
      }
    }
    if (receiver.part != Part.END) {
      throw new HrlCorruptException("log ended after " + receiver.position
          + " bytes, before its trailer");
    }
    return receiver.header;
  }

  private void check(byte[] chunk, int length) throws HrlCorruptException {
    int i = 0;
    while (i < length) {
      int take;
      switch (part) {
        case HEADER, RECORD_HEADER -> {
          take = Math.min(fixed.remaining(), length - i);
          fixed.put(chunk, i, take);
          if (!fixed.hasRemaining()) {
            fixed.flip();
            if (part == Part.HEADER) {
              acceptHeader();
            } else {
              acceptRecordHeader();
            }
          }
        }
        case DATA -> {
          take = (int) Math.min(dataRemaining, length - i);
          dataCrc.update(chunk, i, take);
          fileCrc.update(chunk, i, take);
          dataRemaining -= take;
          if (dataRemaining == 0) {
            endData();
          }
        }
        default -> throw new HrlCorruptException("bytes after the trailer at " + (position + i));
      }
      i += take;
    }
    position += length;
  }

  private void acceptHeader() throws HrlCorruptException {
    header = HrlHeader.decode(fixed);
    fileCrc.update(fixed.duplicate());
    expectRecordHeader(HrlFormat.HEADER_SIZE);
  }

  private void expectRecordHeader(long at) {
    part = Part.RECORD_HEADER;
    recordStart = at;
    fixed.clear().limit(HrlFormat.RECORD_HEADER_SIZE);
  }

  private void acceptRecordHeader() throws HrlCorruptException {
    if (fixed.getInt(0) == HrlFormat.TRAILER_MAGIC) {
      String problem = HrlReader.checkTrailer(fixed, records, dataBytes, fileCrc);
      if (problem != null) {
        throw new HrlCorruptException(problem + " at " + recordStart);
      }
      part = Part.END;
      return;
    }
    String problem = HrlReader.recordHeaderProblem(fixed, header);
    if (problem != null) {
      throw new HrlCorruptException(problem + " at " + recordStart);
    }
    fileCrc.update(fixed.duplicate());
    long dataStart = recordStart + HrlFormat.RECORD_HEADER_SIZE;
    if (fixed.getShort(4) == HrlFormat.TYPE_WRITE) {
      dataRemaining = fixed.getInt(16);
      expectedDataCrc = fixed.getInt(20);
      dataCrc.reset();
      part = Part.DATA;
      if (dataRemaining == 0) {
        endData();
      }
    } else {
      records++;
      expectRecordHeader(dataStart);
    }
  }

  private void endData() throws HrlCorruptException {
    if ((int) dataCrc.getValue() != expectedDataCrc) {
      throw new HrlCorruptException("data checksum mismatch at " + recordStart);
    }
    long length = fixed.getInt(16);
    records++;
    dataBytes += length;
    expectRecordHeader(recordStart + HrlFormat.RECORD_HEADER_SIZE + length);
  }
}
