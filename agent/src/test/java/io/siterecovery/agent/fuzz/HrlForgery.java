package io.siterecovery.agent.fuzz;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.zip.CRC32C;

/**
 * Turns fuzzed bytes into the .hrl log a malicious peer could send: magic, version and every
 * checksum right, sealed by a correct trailer after the last whole record, while offsets, lengths,
 * types and sizes keep their fuzzed values. Written from docs/hrl-format.md, not from the agent's
 * code. Random bytes almost never carry a matching CRC32C or a trailer in the right place, so
 * without this the fuzzer would spend its time on checksum mismatches and torn tails and seldom
 * hand the range and length rules a record to judge.
 */
final class HrlForgery {
  private static final int HEADER = 64;
  private static final int RECORD_HEADER = 32;
  private static final int TRAILER = 32;
  private static final int RECORD_MAGIC = 0x44524352;
  private static final int TRAILER_MAGIC = 0x4C414553;
  private static final int WRITE = 1;

  private HrlForgery() {}

  static byte[] sealed(byte[] fuzzed) {
    if (fuzzed.length < HEADER) {
      return fuzzed.clone();
    }
    ByteBuffer b = ByteBuffer.wrap(fuzzed.clone()).order(ByteOrder.LITTLE_ENDIAN);
    b.put(0, "SRHRL001".getBytes(StandardCharsets.US_ASCII)).putInt(8, 1);
    b.putInt(60, crc(b, 0, 60));
    CRC32C file = new CRC32C();
    file.update(b.array(), 0, HEADER);
    long records = 0;
    long dataBytes = 0;
    int pos = HEADER;
    while (b.capacity() - pos >= RECORD_HEADER && b.getInt(pos) != TRAILER_MAGIC) {
      int data = 0;
      if (b.getShort(pos + 4) == WRITE) {
        data = b.getInt(pos + 16);
        if (data < 0 || data > b.capacity() - pos - RECORD_HEADER) {
          break; // its data is not all there: seal before it
        }
        b.putInt(pos + 20, crc(b, pos + RECORD_HEADER, data));
        dataBytes += data;
      }
      b.putInt(pos, RECORD_MAGIC);
      b.putInt(pos + 24, crc(b, pos, 24));
      file.update(b.array(), pos, RECORD_HEADER + data);
      records++;
      pos += RECORD_HEADER + data;
    }
    ByteBuffer log = ByteBuffer.wrap(Arrays.copyOf(b.array(), pos + TRAILER))
        .order(ByteOrder.LITTLE_ENDIAN);
    log.putInt(pos, TRAILER_MAGIC).putInt(pos + 4, 0).putLong(pos + 8, records)
        .putLong(pos + 16, dataBytes).putInt(pos + 24, (int) file.getValue());
    log.putInt(pos + 28, crc(log, pos, 28));
    return log.array();
  }

  private static int crc(ByteBuffer b, int from, int length) {
    CRC32C crc = new CRC32C();
    crc.update(b.array(), from, length);
    return (int) crc.getValue();
  }
}
