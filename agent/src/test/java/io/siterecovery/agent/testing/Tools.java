package io.siterecovery.agent.testing;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Runs the external programs the agent tests trust as oracles (qemu-io, qemu-img, nbdinfo,
 * nbdcopy, fio). A test that needs a missing program is skipped, not failed; CI installs them.
 */
public final class Tools {
  public static final Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

  /** What a finished program left behind: exit status and stdout and stderr interleaved. */
  public record Result(List<String> command, int exitCode, String output) {
    public boolean ok() {
      return exitCode == 0;
    }

    public Result assertOk() {
      assertThat(exitCode)
          .as("exit status of %s%n--- output ---%n%s", String.join(" ", command), output)
          .isZero();
      return this;
    }

    public Result assertFailed() {
      assertThat(exitCode)
          .as("%s was expected to fail%n--- output ---%n%s", String.join(" ", command), output)
          .isNotZero();
      return this;
    }
  }

  private Tools() {}

  public static Path find(String program) {
    String path = System.getenv().getOrDefault("PATH", "/usr/bin:/bin");
    for (String dir : path.split(File.pathSeparator)) {
      Path candidate = Path.of(dir.isEmpty() ? "." : dir, program);
      if (Files.isRegularFile(candidate) && Files.isExecutable(candidate)) {
        return candidate;
      }
    }
    return null;
  }

  /** Skips the calling test unless every program is installed. */
  public static void assumeInstalled(String... programs) {
    for (String program : programs) {
      assumeTrue(find(program) != null, program + " is not installed; skipping (CI installs it)");
    }
  }

  public static Result run(String... command) {
    return run(DEFAULT_TIMEOUT, Arrays.asList(command));
  }

  public static Result run(List<String> command) {
    return run(DEFAULT_TIMEOUT, command);
  }

  /** Runs a program to completion; a program still running at the timeout is killed and fails. */
  public static Result run(Duration timeout, List<String> command) {
    return run(timeout, command, null);
  }

  /** Runs a program in a working directory (null: this process's). */
  public static Result run(Duration timeout, List<String> command, Path workDir) {
    try {
      ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
      if (workDir != null) {
        builder.directory(workDir.toFile());
      }
      Process process = builder.start();
      process.getOutputStream().close();
      ProcessOutput output = ProcessOutput.drain(process);
      if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        process.destroyForcibly().waitFor();
        throw new AssertionError(String.join(" ", command) + " did not finish within " + timeout
            + "\n--- output ---\n" + output.awaitEnd(Duration.ofSeconds(5)));
      }
      return new Result(List.copyOf(command), process.exitValue(),
          output.awaitEnd(Duration.ofSeconds(10)));
    } catch (IOException e) {
      throw new AssertionError("cannot run " + command, e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted running " + command, e);
    }
  }

  /** qemu-io on a raw NBD export, one {@code -c} per command; exits non-zero if any failed. */
  public static Result qemuIo(String nbdUri, String... commands) {
    List<String> cmd = new ArrayList<>(List.of("qemu-io", "-f", "raw"));
    for (String c : commands) {
      cmd.add("-c");
      cmd.add(c);
    }
    cmd.add(nbdUri);
    Result result = run(cmd);
    if (result.ok()) {
      // Belt and braces: older qemu-io releases exited 0 after a failed command.
      assertThat(result.output()).as("qemu-io output").doesNotContain("failed");
    }
    return result;
  }

  /** {@code qemu-img compare} of two raw images (files or nbd:// URIs): exit 0 means identical. */
  public static Result compareRaw(String a, String b) {
    return run("qemu-img", "compare", "-f", "raw", "-F", "raw", a, b);
  }
}
