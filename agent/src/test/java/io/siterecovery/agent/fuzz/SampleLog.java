package io.siterecovery.agent.fuzz;

import io.siterecovery.agent.hrl.HrlHeader;
import io.siterecovery.agent.hrl.HrlWriter;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.UUID;

/** A small .hrl log as the agent writes it: the seed the .hrl fuzz targets mutate. */
final class SampleLog {
  static final long DISK_SIZE = 1 << 20;
  private static final UUID DISK = UUID.fromString("f0220000-0000-4000-8000-000000000001");

  private SampleLog() {}

  /** Two writes (one ending at the disk's last byte) and a zeroed range; sealed or active. */
  static byte[] bytes(boolean sealed) throws IOException {
    Path path = Files.createTempFile("sample", ".hrl");
    try {
      Files.delete(path); // HrlWriter creates it
      HrlWriter w = HrlWriter.create(path, new HrlHeader(DISK, 3, DISK_SIZE, 1L));
      w.appendWrite(4096, ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5, 6, 7, 8}));
      w.appendZero(0, 512);
      w.appendWrite(DISK_SIZE - 2, ByteBuffer.wrap(new byte[] {9, 9}));
      if (sealed) {
        w.seal();
      } else {
        w.close();
      }
      return Files.readAllBytes(path);
    } finally {
      Files.deleteIfExists(path);
    }
  }
}
