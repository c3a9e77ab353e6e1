package io.siterecovery.workers.chaos;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** A small tmpfs for the replica's data (root only): a filesystem the harness can fill. */
final class Tmpfs {
  private Tmpfs() {}

  /** Mounts a tmpfs of {@code size} ("64m") at {@code dir}; null, or why it could not. */
  static String mount(Path dir, String size) {
    if (!"root".equals(System.getProperty("user.name"))) {
      return "not root (mounting a tmpfs needs it)";
    }
    String said = run(List.of("mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs",
        dir.toString()));
    return said == null ? null : "mount -t tmpfs failed: " + said;
  }

  static void unmount(Path dir) {
    run(List.of("umount", dir.toString()));
  }

  private static String run(List<String> command) {
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
      if (!p.waitFor(30, TimeUnit.SECONDS)) {
        p.destroyForcibly();
        return "timed out";
      }
      return p.exitValue() == 0 ? null : out;
    } catch (IOException e) {
      return e.getMessage();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "interrupted";
    }
  }
}
