package io.siterecovery.agent.source;

import io.siterecovery.agent.vm.QuiesceHooks;
import io.siterecovery.agent.vm.QuiesceHooks.Hook;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs a VM's quiesce hook (local configuration, {@link QuiesceHooks}): the command as given (no
 * shell), with {@code SITE_RECOVERY_VM} set to the VM's name, its output kept for the report. A
 * hook still running at its timeout is killed together with the processes it started. A cycle to
 * a peer and a cycle to a bucket run it alike, just before they seal the VM's logs.
 */
public final class QuiesceRunner {
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(
      QuiesceRunner.class);
  static final String VM_ENV = "SITE_RECOVERY_VM";
  private static final int OUTPUT_TAIL = 400;

  /** {@code message} says why the hook did not succeed; null when it did. */
  public record Outcome(boolean ok, String message) {}

  private QuiesceRunner() {}

  /**
   * Runs {@code vm}'s hook on this host; a VM without one, or with one misconfigured, is not
   * quiesced, and the outcome says so (the point is then crash-consistent).
   */
  public static Outcome quiesce(VmHost host, Vm vm) {
    Hook hook;
    try {
      hook = QuiesceHooks.read(host.dataDir(), vm.name()).orElse(null);
    } catch (IOException e) {
      log.warn("[{}] quiesce hook of {} not run: {}", host.site(), vm.name(), e.getMessage());
      return new Outcome(false, "the quiesce hook of " + vm.name() + " on site " + host.site()
          + " is misconfigured (see the agent's log); the point is crash-consistent");
    }
    if (hook == null) {
      return new Outcome(false, "VM " + vm.name()
          + " has no quiesce hook; the point is crash-consistent");
    }
    Outcome outcome = run(vm.name(), hook);
    if (outcome.ok()) {
      log.debug("[{}] quiesce hook of {} succeeded", host.site(), vm.name());
    } else {
      log.warn("[{}] {}; the point is crash-consistent", host.site(), outcome.message());
    }
    return outcome;
  }

  static Outcome run(String vm, Hook hook) {
    Path output = null;
    try {
      output = Files.createTempFile("quiesce-" + vm + "-", ".log");
      ProcessBuilder builder = new ProcessBuilder(hook.command())
          .redirectErrorStream(true)
          .redirectOutput(output.toFile())
          .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
      builder.environment().put(VM_ENV, vm);
      Process process;
      try {
        process = builder.start();
      } catch (IOException e) {
        log.warn("quiesce hook of {} could not start: {}", vm, e.getMessage());
        return new Outcome(false, "quiesce hook of " + vm + " could not start (the agent's log"
            + " says why)");
      }
      if (!process.waitFor(hook.timeoutSeconds(), TimeUnit.SECONDS)) {
        List<ProcessHandle> children = process.descendants().toList();
        process.destroyForcibly();
        children.forEach(ProcessHandle::destroyForcibly);
        process.waitFor(10, TimeUnit.SECONDS);
        return new Outcome(false, "quiesce hook of " + vm + " timed out after "
            + hook.timeoutSeconds() + " s and was killed" + tail(output));
      }
      if (process.exitValue() != 0) {
        return new Outcome(false, "quiesce hook of " + vm + " exited with status "
            + process.exitValue() + tail(output));
      }
      return new Outcome(true, null);
    } catch (IOException e) {
      log.warn("quiesce hook of {} failed", vm, e);
      return new Outcome(false, "quiesce hook of " + vm + " failed (the agent's log says why)");
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return new Outcome(false, "interrupted while running the quiesce hook");
    } finally {
      if (output != null) {
        try {
          Files.deleteIfExists(output);
        } catch (IOException ignored) {
          // a temp file left behind is harmless
        }
      }
    }
  }

  private static String tail(Path output) {
    try {
      String text = Files.readString(output, StandardCharsets.UTF_8).strip();
      if (text.isEmpty()) {
        return "";
      }
      if (text.length() > OUTPUT_TAIL) {
        text = "..." + text.substring(text.length() - OUTPUT_TAIL);
      }
      return ": " + text;
    } catch (IOException e) {
      return "";
    }
  }
}
