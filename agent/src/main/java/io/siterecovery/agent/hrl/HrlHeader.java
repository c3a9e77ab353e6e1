package io.siterecovery.agent.hrl;

import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.UUID;

/** The fixed 64-byte header that names the disk a log belongs to and its place in the sequence. */
public record HrlHeader(UUID diskId, long generation, long diskSize, long createdMillis) {

  ByteBuffer encode() {
    ByteBuffer b = HrlFormat.allocate(HrlFormat.HEADER_SIZE);
    b.put(HrlFormat.MAGIC);
    b.putInt(HrlFormat.VERSION);
    b.putInt(HrlFormat.HEADER_SIZE);
    b.putLong(diskId.getMostSignificantBits());
    b.putLong(diskId.getLeastSignificantBits());
    b.putLong(generation);
    b.putLong(diskSize);
    b.putLong(createdMillis);
    b.putInt(0);
    b.putInt(HrlFormat.crc(b, 0, 60));
    return b.flip();
  }

  static HrlHeader decode(ByteBuffer b) throws HrlCorruptException {
    if (b.remaining() < HrlFormat.HEADER_SIZE) {
      throw new HrlCorruptException("header truncated");
    }
    byte[] magic = new byte[8];
    b.get(0, magic);
    if (!Arrays.equals(magic, HrlFormat.MAGIC)) {
      throw new HrlCorruptException("not an .hrl file (bad magic)");
    }
    if (b.getInt(60) != HrlFormat.crc(b, 0, 60)) {
      throw new HrlCorruptException("header checksum mismatch");
    }
    if (b.getInt(8) != HrlFormat.VERSION) {
      throw new HrlCorruptException("unsupported .hrl version " + b.getInt(8));
    }
    long generation = b.getLong(32);
    long diskSize = b.getLong(40);
    // A right CRC only says these are the bytes the writer wrote; from a peer they are input.
    if (generation < 1 || diskSize < 0) {
      throw new HrlCorruptException("header out of range (generation " + generation
          + ", disk size " + diskSize + ")");
    }
    return new HrlHeader(new UUID(b.getLong(16), b.getLong(24)), generation, diskSize,
        b.getLong(48));
  }
}
