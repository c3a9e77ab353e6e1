package io.siterecovery.agent.testing;

import io.siterecovery.agent.AgentMain;
import io.siterecovery.agent.api.AgentClient;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A host agent in its own JVM ({@link AgentMain}), so that a test can kill it with SIGKILL. */
public final class AgentProcess implements AutoCloseable {
  private static final Pattern READY = Pattern.compile("(?m)^READY (\\d+) (\\d+)$");

  private final String site;
  private final Process process;
  private final ProcessOutput output;
  private final int httpPort;
  private final int nbdPort;

  private AgentProcess(String site, Process process, ProcessOutput output, int httpPort,
      int nbdPort) {
    this.site = site;
    this.process = process;
    this.output = output;
    this.httpPort = httpPort;
    this.nbdPort = nbdPort;
  }

  /** Starts an agent and waits (with a deadline, not a sleep) for its READY line. */
  public static AgentProcess start(String site, Path dataDir) throws IOException {
    return start(site, dataDir, List.of());
  }

  /**
   * Starts an agent with extra JVM options, e.g.
   * {@code -Dsiterecovery.test.crashAt=apply-record:10} (see {@code FaultInjection}).
   */
  public static AgentProcess start(String site, Path dataDir, List<String> jvmOptions)
      throws IOException {
    return start(site, dataDir, jvmOptions, java.util.Map.of());
  }

  /** Starts an agent that may replicate to {@code peers} (site name to https URL). */
  public static AgentProcess start(String site, Path dataDir, List<String> jvmOptions,
      java.util.Map<String, String> peers) throws IOException {
    return start(site, dataDir, jvmOptions, peers, List.of());
  }

  /** As above, with more of {@link AgentMain}'s options ({@code --object-store}, say). */
  public static AgentProcess start(String site, Path dataDir, List<String> jvmOptions,
      java.util.Map<String, String> peers, List<String> agentOptions) throws IOException {
    Process process = launch(site, dataDir, jvmOptions, peers, agentOptions);
    ProcessOutput output = ProcessOutput.drain(process);
    try {
      String text = output.await(s -> READY.matcher(s).find(), Duration.ofSeconds(60),
          "the agent printed READY");
      Matcher m = READY.matcher(text);
      m.find();
      return new AgentProcess(site, process, output, Integer.parseInt(m.group(1)),
          Integer.parseInt(m.group(2)));
    } catch (AssertionError | RuntimeException e) {
      process.destroyForcibly();
      throw e;
    }
  }

  private static Process launch(String site, Path dataDir, List<String> jvmOptions,
      java.util.Map<String, String> peers, List<String> agentOptions) throws IOException {
    TestCerts.site(site); // issued before the agent looks for it
    String java = ProcessHandle.current().info().command()
        .orElse(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    List<String> command = new ArrayList<>(List.of(java, "-Xmx256m", "-XX:TieredStopAtLevel=1"));
    command.addAll(jvmOptions);
    command.addAll(List.of("-cp", System.getProperty("java.class.path"),
        AgentMain.class.getName(), "--site", site, "--data", dataDir.toString(),
        "--bind", "127.0.0.1", "--http", "0", "--nbd", "0", "--certs",
        TestCerts.dir().toString()));
    peers.forEach((peer, url) -> command.addAll(List.of("--peer", peer + "=" + url)));
    command.addAll(agentOptions);
    return new ProcessBuilder(command).redirectErrorStream(true).start();
  }

  /**
   * Starts an agent that is expected to exit before it is ready (a crash point during its
   * recovery at start) and returns its exit status and output once it is gone.
   */
  public static Tools.Result runUntilExit(String site, Path dataDir, List<String> jvmOptions)
      throws IOException, InterruptedException {
    return runUntilExit(site, dataDir, jvmOptions, List.of());
  }

  /** As above, with more of {@link AgentMain}'s options (a refused one, say). */
  public static Tools.Result runUntilExit(String site, Path dataDir, List<String> jvmOptions,
      List<String> agentOptions) throws IOException, InterruptedException {
    Process process = launch(site, dataDir, jvmOptions, java.util.Map.of(), agentOptions);
    ProcessOutput output = ProcessOutput.drain(process);
    if (!process.waitFor(60, TimeUnit.SECONDS) || output.text().contains("READY ")) {
      process.destroyForcibly().waitFor();
      throw new AssertionError("the agent did not exit before it was ready\n--- output ---\n"
          + output.text());
    }
    return new Tools.Result(List.of("AgentMain"), process.exitValue(),
        output.awaitEnd(Duration.ofSeconds(10)));
  }

  /** Waits, with a deadline, until the process has exited by itself; returns its status. */
  public int awaitExit(Duration timeout) throws InterruptedException {
    if (!process.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
      throw new AssertionError("agent " + process.pid() + " still running after " + timeout
          + "\n--- output ---\n" + output.text());
    }
    output.awaitEnd(Duration.ofSeconds(10));
    return process.exitValue();
  }

  public String url() {
    return "https://127.0.0.1:" + httpPort;
  }

  /** The operator's client of this agent. */
  public AgentClient client() {
    return TestCerts.operatorClient(url(), site);
  }

  /** A client of this agent acting as {@code identity} (a peer site feeding a replica, say). */
  public AgentClient clientAs(io.siterecovery.agent.security.Identity identity) {
    return new AgentClient(url(), TestCerts.credentials(identity),
        io.siterecovery.agent.security.Identity.site(site));
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
