package io.siterecovery.agent.vm;

import io.siterecovery.agent.DurableFiles;
import io.siterecovery.agent.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.Optional;
import java.util.Set;

/**
 * Quiesce hooks are local configuration of the host an agent runs on: one file per VM,
 * {@code <data>/hooks/<vm>.json}, written by {@code site-recovery vm quiesce-hook ... --data DIR}
 * with filesystem access to that host. No endpoint sets or shows one, so nothing on the network
 * can choose a command the agent runs. A hook file that others than its owner may write is
 * refused, as sshd refuses such key files: whoever can edit it could run commands as the agent.
 */
public final class QuiesceHooks {
  public static final String DIR = "hooks";
  private static final int MAX_TIMEOUT_SECONDS = 3600;

  /**
   * The command to run (no shell; {@code SITE_RECOVERY_VM} names the VM) and how long it may
   * take. Exit status 0 within the timeout makes the point app-consistent.
   */
  public record Hook(List<String> command, int timeoutSeconds) {
    public Hook {
      if (command == null || command.isEmpty() || command.get(0) == null
          || command.get(0).isBlank()) {
        throw new IllegalArgumentException("a quiesce hook needs a command (program and"
            + " arguments)");
      }
      if (timeoutSeconds <= 0 || timeoutSeconds > MAX_TIMEOUT_SECONDS) {
        throw new IllegalArgumentException("a quiesce hook's timeout must be 1 to "
            + MAX_TIMEOUT_SECONDS + " seconds; got " + timeoutSeconds);
      }
      command = List.copyOf(command);
    }
  }

  private QuiesceHooks() {}

  public static Path file(Path dataDir, String vm) {
    return dataDir.resolve(DIR).resolve(Names.requireValid("VM", vm) + ".json");
  }

  /** Sets the VM's hook, or removes it when {@code hook} is null. */
  public static void set(Path dataDir, String vm, Hook hook) throws IOException {
    Path file = file(dataDir, vm);
    if (hook == null) {
      Files.deleteIfExists(file);
      return;
    }
    Files.createDirectories(file.getParent(), PosixFilePermissions.asFileAttribute(
        PosixFilePermissions.fromString("rwx------")));
    DurableFiles.writeOwnerOnly(file, Json.MAPPER.writeValueAsBytes(hook));
  }

  /** The VM's hook, if one is configured; an unsafe or malformed file is an error. */
  public static Optional<Hook> read(Path dataDir, String vm) throws IOException {
    Path file = file(dataDir, vm);
    if (!Files.exists(file, LinkOption.NOFOLLOW_LINKS)) {
      return Optional.empty();
    }
    if (!Files.isRegularFile(file, LinkOption.NOFOLLOW_LINKS)) {
      throw new IOException("hook file " + file + " is not a regular file");
    }
    Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file, LinkOption.NOFOLLOW_LINKS);
    if (perms.contains(PosixFilePermission.GROUP_WRITE)
        || perms.contains(PosixFilePermission.OTHERS_WRITE)) {
      throw new IOException("hook file " + file + " is writable by others than its owner ("
          + PosixFilePermissions.toString(perms) + "); refusing to run it");
    }
    try {
      return Optional.of(Json.MAPPER.readValue(file.toFile(), Hook.class));
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw new IOException("hook file " + file + " is malformed: " + e.getOriginalMessage(), e);
    }
  }
}
