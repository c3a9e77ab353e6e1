package io.siterecovery.agent.testing;

import io.siterecovery.agent.AgentMain;
import io.siterecovery.agent.api.AgentClient;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A host agent in its own JVM ({@link AgentMain}), so that a test can kill it with SIGKILL. */
public final class AgentProcess implements AutoCloseable {
  private static final Pattern READY = Pattern.compile("(?m)^READY (\\d+) (\\d+)$");

  private final Process process;
  private final ProcessOutput output;
  private final int httpPort;
  private final int nbdPort;

  private AgentProcess(Process process, ProcessOutput output, int httpPort, int nbdPort) {
    this.process = process;
    this.output = output;
    this.httpPort = httpPort;
    this.nbdPort = nbdPort;
  }

  /** Starts an agent and waits (with a deadline, not a sleep) for its READY line. */
  public static AgentProcess start(String site, Path dataDir) throws IOException {
    String java = ProcessHandle.current().info().command()
        .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    List<String> command = List.of(java, "-Xmx256m", "-XX:TieredStopAtLevel=1",
        "-cp", System.getProperty("java.class.path"), AgentMain.class.getName(),
        "--site", site, "--data", dataDir.toString(), "--bind", "127.0.0.1",
        "--http", "0", "--nbd", "0");
    Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
    ProcessOutput output = ProcessOutput.drain(process);
    try {
      String text = output.await(s -> READY.matcher(s).find(), Duration.ofSeconds(60),
          "the agent printed READY");
      Matcher m = READY.matcher(text);
      m.find();
      return new AgentProcess(process, output, Integer.parseInt(m.group(1)),
          Integer.parseInt(m.group(2)));
    } catch (AssertionError | RuntimeException e) {
      process.destroyForcibly();
      throw e;
    }
  }

  public String url() {
    return "http://127.0.0.1:" + httpPort;
  }

  public AgentClient client() {
    return new AgentClient(url());
  }

  public int nbdPort() {
    return nbdPort;
  }

  public String nbdUri(String vm, String disk) {
    return "nbd://127.0.0.1:" + nbdPort + "/" + vm + "/" + disk;
  }

  public String output() {
    return output.text();
  }

  /** SIGKILL: no shutdown hook, no flush, no close; returns once the process is gone. */
  public void kill() throws InterruptedException {
    process.destroyForcibly();
    if (!process.waitFor(30, TimeUnit.SECONDS)) {
      throw new AssertionError("agent " + process.pid() + " survived SIGKILL");
    }
  }

  /** SIGTERM: the agent closes cleanly (its shutdown hook); returns once the process is gone. */
  public void stop() throws InterruptedException {
    process.destroy();
    if (!process.waitFor(60, TimeUnit.SECONDS)) {
      throw new AssertionError("agent " + process.pid() + " did not stop on SIGTERM");
    }
  }

  public Process process() {
    return process;
  }

  @Override
  public void close() throws InterruptedException {
    if (process.isAlive()) {
      kill();
    }
  }
}
