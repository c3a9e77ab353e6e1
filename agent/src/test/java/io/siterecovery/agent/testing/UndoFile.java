package io.siterecovery.agent.testing;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.zip.CRC32C;

/**
 * A second, deliberately simple reader of undo files written from docs/undo-journal.md alone, so
 * tests can check the layout without trusting the agent's own UndoReader. It throws an
 * AssertionError at the first field that does not match the document.
 */
public final class UndoFile {
  /** Type 1 = DATA (with the old bytes), 2 = ZERO. */
  public record Entry(int type, long offset, int length, byte[] data) {}

  public record Parsed(String magic, int version, int headerSize, UUID diskId, long generation,
      long diskSize, long createdMillis, List<Entry> entries, long trailerEntryCount,
      long trailerDataBytes) {}

  private UndoFile() {}

  public static Parsed parse(Path file) throws IOException {
    byte[] bytes = Files.readAllBytes(file);
    ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
    String magic = new String(bytes, 0, 8, StandardCharsets.US_ASCII);
    check(b.getInt(56) == 0, "header reserved");
    check(b.getInt(60) == crc(bytes, 0, 60), "header CRC");
    List<Entry> entries = new ArrayList<>();
    CRC32C fileCrc = new CRC32C();
    fileCrc.update(bytes, 0, 64);
    int pos = 64;
    while (!new String(bytes, pos, 4, StandardCharsets.US_ASCII).equals("UEND")) {
      check(new String(bytes, pos, 4, StandardCharsets.US_ASCII).equals("UNDO"),
          "entry magic at " + pos);
      int type = b.getShort(pos + 4);
      check(b.getShort(pos + 6) == 0, "entry reserved (6) at " + pos);
      long offset = b.getLong(pos + 8);
      int length = b.getInt(pos + 16);
      int dataCrc = b.getInt(pos + 20);
      check(b.getInt(pos + 24) == crc(bytes, pos, pos + 24), "entry header CRC at " + pos);
      check(b.getInt(pos + 28) == 0, "entry reserved (28) at " + pos);
      fileCrc.update(bytes, pos, 32);
      byte[] data = null;
      if (type == 1) {
        data = new byte[length];
        System.arraycopy(bytes, pos + 32, data, 0, length);
        check(dataCrc == crc(bytes, pos + 32, pos + 32 + length), "data CRC at " + pos);
        fileCrc.update(data);
      } else {
        check(type == 2 && dataCrc == 0, "ZERO entry at " + pos);
      }
      entries.add(new Entry(type, offset, length, data));
      pos += 32 + (data == null ? 0 : length);
    }
    check(b.getInt(pos + 4) == 0, "trailer reserved");
    check(b.getInt(pos + 24) == (int) fileCrc.getValue(), "file CRC");
    check(b.getInt(pos + 28) == crc(bytes, pos, pos + 28), "trailer CRC");
    check(pos + 32 == bytes.length, "trailer ends the file");
    return new Parsed(magic, b.getInt(8), b.getInt(12), new UUID(b.getLong(16), b.getLong(24)),
        b.getLong(32), b.getLong(40), b.getLong(48), entries, b.getLong(pos + 8),
        b.getLong(pos + 16));
  }

  private static int crc(byte[] bytes, int from, int to) {
    CRC32C crc = new CRC32C();
    crc.update(bytes, from, to - from);
    return (int) crc.getValue();
  }

  private static void check(boolean ok, String what) {
    if (!ok) {
      throw new AssertionError("undo file does not match docs/undo-journal.md: " + what);
    }
  }
}
