package io.siterecovery.agent.scripts;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages.ScriptRunRequest;
import io.siterecovery.agent.api.AgentMessages.ScriptRunResult;
import io.siterecovery.agent.vm.Names;
import java.io.Closeable;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Recovery-plan scripts: executables in the agent's own scripts directory (local configuration
 * of the host, like quiesce hooks), run by name for a plan's action before or after a group of
 * VMs. A request names a script and carries context; it never carries a command, a path or an
 * environment of its own.
 *
 * <p>A script runs only if it is a regular file directly in the directory (a symbolic link is
 * followed only to a file in the same directory), executable, owned by the agent's user or by
 * root and writable by no one else, in a directory that is owned and writable the same way:
 * whoever could change the file could run commands as the agent. It runs without a shell, in
 * the scripts directory, stdin closed, with a clean environment: {@code PATH}, {@code HOME},
 * {@code LANG=C.UTF-8} and the request's context ({@code SR_PLAN}, {@code SR_OPERATION},
 * {@code SR_GROUP}, {@code SR_DIRECTION}, {@code SR_SITE} and {@code SR_CONTEXT_FILE}, a 0600
 * file holding {@code contextJson}, deleted after the run). At its timeout it is killed together
 * with the processes it started. The last {@link #OUTPUT_TAIL} bytes of its output are kept.
 */
public final class PlanScripts implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(PlanScripts.class);
  /** The scripts directory under the data directory unless configured elsewhere. */
  public static final String DEFAULT_DIR = "scripts";
  /** Output kept per run: the end, where a failing script says why. */
  public static final int OUTPUT_TAIL = 64 << 10;
  static final String PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
  /**
   * How long the output is read after the script ended: a process it left in the background may
   * hold its output open for ever, and the answer does not wait for that.
   */
  private static final Duration OUTPUT_GRACE = Duration.ofSeconds(2);
  private static final Duration REAP = Duration.ofSeconds(10);
  private static final int ROOT = 0;

  private final String site;
  private final Path dir;
  private final int agentUid;
  private final Set<Process> running = ConcurrentHashMap.newKeySet();
  private volatile boolean closed;

  public PlanScripts(String site, Path dir) {
    this.site = site;
    this.dir = dir.toAbsolutePath().normalize();
    this.agentUid = (int) new com.sun.security.auth.module.UnixSystem().getUid();
  }

  /** The configured directory (it may not exist: then there are no scripts). */
  public Path dir() {
    return dir;
  }

  /** The names of the scripts that {@link #run} would run, sorted. */
  public List<String> list() throws IOException {
    Optional<Path> real = directory();
    if (real.isEmpty()) {
      return List.of();
    }
    List<String> names = new ArrayList<>();
    try (Stream<Path> files = Files.list(real.get())) {
      for (Path file : (Iterable<Path>) files::iterator) {
        String name = file.getFileName().toString();
        try {
          resolve(real.get(), name);
          names.add(name);
        } catch (AgentException | IOException notRunnable) { // IOException: removed meanwhile
          log.debug("[{}] {} is not a runnable plan script: {}", site, file,
              notRunnable.getMessage());
        }
      }
    }
    names.sort(null);
    return names;
  }

  /**
   * Runs script {@code name} with {@code request}'s context and waits for it (at most its
   * timeout, then it is killed). A non-zero exit code is a result, not an error. Refused before
   * anything runs: BAD_REQUEST (a name or field out of bounds, a context that is not a JSON
   * object), NO_SUCH_SCRIPT, INVALID_STATE (a file or directory the agent may not trust, or a
   * file it cannot execute).
   */
  public ScriptRunResult run(String name, ScriptRunRequest request) throws IOException {
    Names.requireValid("script", name);
    if (request == null) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "request body required");
    }
    request.validate();
    requireJsonObject(request.contextJson());
    Path realDir = directory().orElseThrow(() -> new AgentException(ErrorCode.NO_SUCH_SCRIPT,
        "site " + site + " has no script named '" + name + "': its scripts directory " + dir
            + " does not exist"));
    Path script = resolve(realDir, name);
    if (closed) {
      throw new AgentException(ErrorCode.INVALID_STATE, "the agent of site " + site
          + " is stopping");
    }

    Path context = Files.createTempFile("sr-script-context-", ".json",
        PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Process process = null;
    try {
      Files.writeString(context, request.contextJson(), StandardCharsets.UTF_8);
      ProcessBuilder builder = new ProcessBuilder(script.toString())
          .directory(realDir.toFile())
          .redirectErrorStream(true)
          .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
      Map<String, String> env = builder.environment();
      env.clear();
      env.put("PATH", PATH);
      env.put("HOME", System.getProperty("user.home"));
      env.put("LANG", "C.UTF-8");
      env.put("SR_PLAN", request.plan());
      env.put("SR_OPERATION", request.operation());
      env.put("SR_GROUP", request.group() == null ? "" : request.group());
      env.put("SR_DIRECTION", request.direction() == null ? "" : request.direction());
      env.put("SR_SITE", site);
      env.put("SR_CONTEXT_FILE", context.toString());

      Instant startedAt = Instant.now();
      long start = System.nanoTime();
      try {
        process = builder.start();
      } catch (IOException e) {
        log.warn("[{}] plan script {} could not start: {}", site, name, e.getMessage());
        throw new AgentException(ErrorCode.INVALID_STATE, "script '" + name + "' on site " + site
            + " could not start: " + e.getMessage());
      }
      running.add(process);
      if (closed) {
        killTree(process);
        throw stopped(name);
      }
      log.info("[{}] plan script {} started (pid {}, plan {}, operation {}, group {}, timeout {}"
          + " s)", site, name, process.pid(), request.plan(), request.operation(),
          request.group(), request.timeoutSeconds());
      OutputTail output = OutputTail.start(process.getInputStream(),
          "plan-script-output-" + site + "-" + name);

      boolean finished = process.waitFor(request.timeoutSeconds(), TimeUnit.SECONDS);
      if (!finished) {
        killTree(process);
        if (!process.waitFor(REAP.toSeconds(), TimeUnit.SECONDS)) {
          log.warn("[{}] plan script {} (pid {}) survived SIGKILL for {} s", site, name,
              process.pid(), REAP.toSeconds());
        }
      }
      long millis = Duration.ofNanos(System.nanoTime() - start).toMillis();
      if (closed) {
        throw stopped(name);
      }
      int exitCode = finished ? process.exitValue() : -1;
      if (!output.awaitEnd(OUTPUT_GRACE)) {
        log.info("[{}] plan script {} left a process holding its output; the answer keeps what"
            + " came within {} s of its end", site, name, OUTPUT_GRACE.toSeconds());
      }
      OutputTail.Tail tail = output.tail();
      if (finished) {
        log.info("[{}] plan script {} exited with {} after {} ms", site, name, exitCode, millis);
      } else {
        log.warn("[{}] plan script {} timed out after {} s and was killed ({} ms)", site, name,
            request.timeoutSeconds(), millis);
      }
      return new ScriptRunResult(name, site, exitCode, !finished, millis, tail.text(),
          tail.truncated(), startedAt);
    } catch (InterruptedException e) {
      if (process != null) {
        killTree(process);
      }
      Thread.currentThread().interrupt();
      throw new AgentException(ErrorCode.IO_ERROR, "interrupted while script '" + name
          + "' ran on site " + site + "; it was killed");
    } finally {
      if (process != null) {
        running.remove(process);
      }
      try {
        Files.deleteIfExists(context);
      } catch (IOException e) {
        log.warn("[{}] context file {} of plan script {} not deleted: {}", site, context, name,
            e.toString());
      }
    }
  }

  /**
   * Kills the scripts still running: the agent is stopping, and their callers are told so
   * rather than given the exit code of a kill.
   */
  @Override
  public void close() {
    closed = true;
    for (Process p : running) {
      log.warn("[{}] killing plan script pid {}: the agent is stopping", site, p.pid());
      killTree(p);
    }
  }

  private static void requireJsonObject(String json) {
    JsonNode node;
    try {
      node = Json.MAPPER.reader().with(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .readTree(json);
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "contextJson is not valid JSON");
    }
    if (node == null || !node.isObject()) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "contextJson must be a JSON object");
    }
  }

  /** The directory's real path; empty when it does not exist; INVALID_STATE when unsafe. */
  private Optional<Path> directory() throws IOException {
    if (!Files.exists(dir)) {
      return Optional.empty();
    }
    Path real = dir.toRealPath();
    if (!Files.isDirectory(real)) {
      throw unsafe("scripts directory " + dir + " is not a directory");
    }
    requireTrusted(real, "scripts directory " + dir);
    return Optional.of(real);
  }

  /** The file script {@code name} runs, checked; refused with the reason otherwise. */
  private Path resolve(Path realDir, String name) throws IOException {
    Names.requireValid("script", name);
    Path entry = realDir.resolve(name);
    if (!Files.exists(entry, LinkOption.NOFOLLOW_LINKS)) {
      throw new AgentException(ErrorCode.NO_SUCH_SCRIPT, "site " + site + " has no script named '"
          + name + "' (in " + dir + ")");
    }
    String what = "script '" + name + "' on site " + site;
    Path real;
    try {
      real = entry.toRealPath();
    } catch (NoSuchFileException e) {
      throw unsafe(what + " is a symbolic link to nothing");
    }
    if (!realDir.equals(real.getParent())) {
      throw unsafe(what + " is a symbolic link out of the scripts directory " + dir
          + "; refusing to run it");
    }
    if (!Files.isRegularFile(real, LinkOption.NOFOLLOW_LINKS)) {
      throw unsafe(what + " is not a regular file");
    }
    requireTrusted(real, what);
    if (!Files.isExecutable(real)) {
      throw unsafe(what + " is not executable by the agent's user");
    }
    return real;
  }

  /**
   * Owned by the agent's user or root, writable by its owner only: as sshd treats its key files,
   * since whoever may change {@code path} could run commands as the agent.
   */
  private void requireTrusted(Path path, String what) throws IOException {
    Set<PosixFilePermission> perms = Files.getPosixFilePermissions(path,
        LinkOption.NOFOLLOW_LINKS);
    if (perms.contains(PosixFilePermission.GROUP_WRITE)
        || perms.contains(PosixFilePermission.OTHERS_WRITE)) {
      throw unsafe(what + " is writable by others than its owner ("
          + PosixFilePermissions.toString(perms) + "); refusing to run it");
    }
    int owner = (Integer) Files.getAttribute(path, "unix:uid", LinkOption.NOFOLLOW_LINKS);
    if (owner != agentUid && owner != ROOT) {
      throw unsafe(what + " is owned by uid " + owner + ", neither the agent's user (uid "
          + agentUid + ") nor root; refusing to run it");
    }
  }

  /** Recoverable: the step did not happen, and may be asked again of the restarted agent. */
  private AgentException stopped(String name) {
    return new AgentException(ErrorCode.IO_ERROR, "the agent of site " + site + " stopped while"
        + " script '" + name + "' ran; the script was killed");
  }

  private static AgentException unsafe(String message) {
    return new AgentException(ErrorCode.INVALID_STATE, message);
  }

  /**
   * SIGKILL to the script and every process under it. The tree is read before the script dies
   * (its children are re-parented then, out of reach), and read again under what was found, for
   * processes started in between.
   */
  static void killTree(Process process) {
    Set<ProcessHandle> found = new LinkedHashSet<>(process.descendants().toList());
    process.destroyForcibly();
    Set<ProcessHandle> killed = new LinkedHashSet<>();
    for (int round = 0; round < 3 && !found.isEmpty(); round++) {
      Set<ProcessHandle> next = new LinkedHashSet<>();
      for (ProcessHandle h : found) {
        h.descendants().forEach(next::add);
        h.destroyForcibly();
        killed.add(h);
      }
      next.removeAll(killed);
      found = next;
    }
  }
}
