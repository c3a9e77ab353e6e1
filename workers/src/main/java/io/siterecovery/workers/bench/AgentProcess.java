package io.siterecovery.workers.bench;

import io.siterecovery.agent.AgentMain;
import io.siterecovery.workers.cli.SiteRecoveryCli;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A host agent in a JVM of its own ({@link AgentMain}), started from the classpath this process
 * runs on: the classpath itself, or the runnable jar through Spring Boot's
 * {@code PropertiesLauncher} when this process was started with {@code java -jar}. Its log goes
 * to a file; {@link #peakRssBytes()} reads the kernel's peak resident set size of the process.
 */
final class AgentProcess implements AutoCloseable {
  private final Process process;
  private final Path log;
  final int httpPort;
  final int nbdPort;

  private AgentProcess(Process process, Path log, int httpPort, int nbdPort) {
    this.process = process;
    this.log = log;
    this.httpPort = httpPort;
    this.nbdPort = nbdPort;
  }

  static AgentProcess start(String site, Path data, Path log, List<String> jvmOptions,
      java.util.Map<String, String> peers) throws IOException, InterruptedException {
    return launch(AgentMain.class.getName(), arguments(site, data, peers), log, jvmOptions,
        line -> {
          if (!line.startsWith("READY ")) {
            return null;
          }
          String[] words = line.split(" ");
          return new int[] {Integer.parseInt(words[1]), Integer.parseInt(words[2])};
        });
  }

  private static final Pattern CLI_READY =
      Pattern.compile("agent \\S+ up: API https://[^:]+:(\\d+) .*NBD port (\\d+).*");

  /** The same agent as the operator runs it: {@code site-recovery agent}, whose stop is ours. */
  static AgentProcess startCommand(String site, Path data, Path log,
      java.util.Map<String, String> peers) throws IOException, InterruptedException {
    List<String> args = new ArrayList<>(List.of("agent"));
    args.addAll(arguments(site, data, peers));
    return launch(SiteRecoveryCli.class.getName(), args, log, List.of("-Xmx128m"), line -> {
      Matcher m = CLI_READY.matcher(line);
      return m.matches() ? new int[] {Integer.parseInt(m.group(1)),
          Integer.parseInt(m.group(2))} : null;
    });
  }

  private static List<String> arguments(String site, Path data,
      java.util.Map<String, String> peers) {
    List<String> args = new ArrayList<>(List.of("--site", site, "--data", data.toString(),
        "--http", "0", "--nbd", "0", "--certs", LocalSites.certs(site).toString()));
    peers.forEach((peer, url) -> args.addAll(List.of("--peer", peer + "=" + url)));
    return args;
  }

  /** {@code java ... mainClass}, on the classpath this process runs on. */
  static List<String> javaCommand(String mainClass, List<String> jvmOptions) {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmOptions);
    command.add("-cp");
    command.add(System.getProperty("java.class.path"));
    if (AgentMain.class.getClassLoader() == ClassLoader.getSystemClassLoader()) {
      command.add(mainClass);
    } else { // nested in the Spring Boot jar: let its launcher build the class path
      command.add("-Dloader.main=" + mainClass);
      command.add("org.springframework.boot.loader.launch.PropertiesLauncher");
    }
    return command;
  }

  /** {@code ready}: the HTTP and NBD ports from the line that says the agent is up, else null. */
  private static AgentProcess launch(String mainClass, List<String> args, Path log,
      List<String> jvmOptions, Function<String, int[]> ready)
      throws IOException, InterruptedException {
    List<String> command = javaCommand(mainClass, jvmOptions);
    command.addAll(args);
    ProcessBuilder builder = new ProcessBuilder(command).redirectError(log.toFile());
    // The CLI's log file, beside this one rather than in the working directory.
    builder.environment().put("SITE_RECOVERY_LOG_FILE", log + ".file");
    Process p = builder.start();
    CompletableFuture<int[]> ports = new CompletableFuture<>();
    Thread reader = new Thread(() -> {
      try (BufferedReader out = new BufferedReader(
          new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
        for (String line; (line = out.readLine()) != null; ) {
          int[] up = ready.apply(line);
          if (up != null) {
            ports.complete(up);
          }
        }
      } catch (IOException e) {
        ports.completeExceptionally(e);
      }
      ports.completeExceptionally(new IOException("agent exited before it was up"));
    }, "agent-stdout");
    reader.setDaemon(true);
    reader.start();
    try {
      int[] up = ports.get(60, TimeUnit.SECONDS);
      return new AgentProcess(p, log, up[0], up[1]);
    } catch (Exception e) {
      p.destroyForcibly().waitFor();
      throw new IOException("agent " + String.join(" ", command) + " did not start: " + e
          + "\n" + Files.readString(log), e);
    }
  }

  String url() {
    return "https://127.0.0.1:" + httpPort;
  }

  long pid() {
    return process.pid();
  }

  /** VmHWM from /proc/PID/status: the highest resident set size the process ever had. */
  long peakRssBytes() throws IOException {
    return statusKib("VmHWM:") << 10;
  }

  long rssBytes() throws IOException {
    return statusKib("VmRSS:") << 10;
  }

  private long statusKib(String field) throws IOException {
    for (String line : Files.readAllLines(Path.of("/proc", String.valueOf(process.pid()),
        "status"))) {
      if (line.startsWith(field)) {
        return Long.parseLong(line.substring(field.length()).trim().split("\\s+")[0]);
      }
    }
    throw new IOException(field + " not in /proc/" + process.pid() + "/status (log: " + log + ")");
  }

  /** The exit status, once the process has ended. */
  int exitValue() {
    return process.exitValue();
  }

  /** SIGTERM (the agent closes cleanly), then SIGKILL if it has not exited after 30 s. */
  @Override
  public void close() throws IOException {
    process.destroy();
    try {
      if (!process.waitFor(30, TimeUnit.SECONDS)) {
        process.destroyForcibly().waitFor();
      }
    } catch (InterruptedException e) {
      process.destroyForcibly();
      Thread.currentThread().interrupt();
    }
  }
}
