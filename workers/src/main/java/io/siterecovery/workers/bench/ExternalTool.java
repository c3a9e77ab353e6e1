package io.siterecovery.workers.bench;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Runs a reference tool and returns its output; fails loudly when it fails. */
final class ExternalTool {
  private ExternalTool() {}

  static String run(List<String> command) throws IOException, InterruptedException {
    return run(command, java.util.Map.of(), List.of());
  }

  /** The same, with {@code env} added to this process's environment and {@code unset} removed. */
  static String run(List<String> command, java.util.Map<String, String> env, List<String> unset)
      throws IOException, InterruptedException {
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true);
    builder.environment().keySet().removeAll(unset);
    builder.environment().putAll(env);
    Process p = builder.start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    if (!p.waitFor(30, TimeUnit.MINUTES) || p.exitValue() != 0) {
      throw new IOException(String.join(" ", command) + " failed:\n" + out);
    }
    return out;
  }

  static boolean installed(String program) {
    for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (new java.io.File(dir, program).canExecute()) {
        return true;
      }
    }
    return false;
  }

  /** Parses fio's "IOPS=12.3k" from its normal output. */
  static double fioIops(String output) {
    java.util.regex.Matcher m = java.util.regex.Pattern.compile("IOPS=([0-9.]+)([kM]?)")
        .matcher(output);
    if (!m.find()) {
      throw new IllegalStateException("no IOPS in fio output:\n" + output);
    }
    double v = Double.parseDouble(m.group(1));
    return switch (m.group(2)) {
      case "k" -> v * 1e3;
      case "M" -> v * 1e6;
      default -> v;
    };
  }
}
