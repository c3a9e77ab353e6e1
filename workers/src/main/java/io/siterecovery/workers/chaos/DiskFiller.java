package io.siterecovery.workers.chaos;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Fills a filesystem to its last block with one file, as a runaway neighbour would. */
final class DiskFiller {
  private DiskFiller() {}

  /** Writes {@code file} until the filesystem says it is full; returns the bytes it holds. */
  static long fill(Path file) throws IOException {
    ByteBuffer chunk = ByteBuffer.allocate(1 << 20);
    long written = 0;
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE,
        StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING)) {
      while (true) {
        chunk.clear();
        try {
          while (chunk.hasRemaining()) {
            written += ch.write(chunk);
          }
        } catch (IOException full) { // ENOSPC: "No space left on device"
          for (int size = 64 * 1024; size >= 4096; size /= 2) { // the last blocks too
            try {
              written += ch.write(ByteBuffer.allocate(size));
            } catch (IOException smaller) {
              // try a smaller piece
            }
          }
          return written;
        }
      }
    }
  }
}
