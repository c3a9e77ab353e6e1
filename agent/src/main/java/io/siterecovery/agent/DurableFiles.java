package io.siterecovery.agent;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.Comparator;
import java.util.stream.Stream;

/** The agent's small durable-file steps, done one way everywhere. */
public final class DurableFiles {
  private DurableFiles() {}

  /**
   * Replaces {@code file} with {@code value} as JSON so that a crash leaves the old contents or
   * the new, never a mix: written beside it, forced, renamed over it, and the folder forced.
   */
  public static void writeJson(Path file, Object value) throws IOException {
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    byte[] json = Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(value);
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      ByteBuffer b = ByteBuffer.wrap(json);
      while (b.hasRemaining()) {
        ch.write(b);
      }
      ch.force(true);
    }
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    forceDir(file.getParent());
  }

  /** Makes a folder's entries (files created, renamed or deleted in it) durable. */
  public static void forceDir(Path dir) throws IOException {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    }
  }

  /** Deletes a folder and everything below it; nothing there is not an error. */
  public static void deleteTree(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
