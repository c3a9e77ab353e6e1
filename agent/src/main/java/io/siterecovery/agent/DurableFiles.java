package io.siterecovery.agent;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.PosixFilePermissions;
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
    writeForced(tmp, Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(value));
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    forceDir(file.getParent());
  }

  /**
   * Replaces {@code file} with {@code bytes} as {@link #writeJson} does, readable and writable by
   * its owner only from the first byte on (a key, a secret, a hook): the file beside it is
   * created with those permissions, never widened then narrowed.
   */
  public static void writeOwnerOnly(Path file, byte[] bytes) throws IOException {
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.deleteIfExists(tmp);
    Files.createFile(tmp, PosixFilePermissions.asFileAttribute(
        PosixFilePermissions.fromString("rw-------")));
    writeForced(tmp, bytes);
    Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    forceDir(file.toAbsolutePath().getParent());
  }

  /** Writes {@code bytes} as the whole of {@code file} (kept with its permissions if it exists). */
  private static void writeForced(Path file, byte[] bytes) throws IOException {
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      ByteBuffer b = ByteBuffer.wrap(bytes);
      while (b.hasRemaining()) {
        ch.write(b);
      }
      ch.force(true);
    }
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
