package io.siterecovery.agent.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A second, deliberately naive reader of .hrl files written from docs/hrl-format.md alone, so
 * tests can look inside a log without trusting the agent's own HrlReader. It stops at the first
 * record that does not parse and never checks checksums.
 */
public final class HrlFile {
  /** One record: type 1 = WRITE (with data), 2 = ZERO. */
  public record Entry(int type, long offset, int length, byte[] data) {
    public boolean isWrite() {
      return type == 1;
    }

    /** True if this is a write whose every data byte is {@code value}. */
    public boolean isWriteOf(int value) {
      if (!isWrite()) {
        return false;
      }
      for (byte b : data) {
        if (b != (byte) value) {
          return false;
        }
      }
      return true;
    }
  }

  private HrlFile() {}

  public static List<Entry> entries(Path log) throws IOException {
    ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(log)).order(ByteOrder.LITTLE_ENDIAN);
    List<Entry> entries = new ArrayList<>();
    int pos = 64;
    while (pos + 32 <= b.capacity() && b.getInt(pos) == 0x44524352) { // "RCRD"
      int type = b.getShort(pos + 4);
      long offset = b.getLong(pos + 8);
      int length = b.getInt(pos + 16);
      byte[] data = null;
      int next = pos + 32;
      if (type == 1) {
        if (next + length > b.capacity()) {
          break;
        }
        data = new byte[length];
        b.get(next, data);
        next += length;
      }
      entries.add(new Entry(type, offset, length, data));
      pos = next;
    }
    return entries;
  }
}
