package io.siterecovery.workers.realserver;

import com.fasterxml.jackson.databind.JsonNode;
import io.siterecovery.agent.Json;
import io.siterecovery.workers.cli.SiteRecoveryCli;
import io.siterecovery.workers.dev.FreePorts;
import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The stack of the real-server tier, as child processes: {@code temporal server start-dev} (the
 * server operators run, with its visibility store and search attributes, and optionally its Web
 * UI), one {@code site-recovery agent} per site and two {@code site-recovery worker} processes;
 * and the ways the tests drive it as an operator would ({@code temporal} and
 * {@code site-recovery} commands). Logs and disks stay in {@link #dir()} for a person to read
 * after a failure.
 */
final class RealServerStack implements AutoCloseable {
  static final Duration STEP = Duration.ofMinutes(3);

  private final Path dir;
  private final List<Process> started = new ArrayList<>();
  private final String temporal;
  private String address;
  private String webUi;
  private Path config;
  private int primaryNbd;
  private int secondaryNbd;
  private Process worker1;
  private int worker1Http;
  private Process worker2;

  private RealServerStack(Path dir, String temporal) {
    this.dir = dir;
    this.temporal = temporal;
  }

  /** Why the stack cannot start on this machine, or null. */
  static String whyNot() {
    return onPath("temporal") == null
        ? "the temporal CLI is not on the PATH; ./run-tests builds it with "
            + "`go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into ~/go/bin"
        : null;
  }

  /**
   * Starts everything in {@code dir} (emptied first) and returns once both workers poll; stops
   * what it started if any part fails to come up.
   *
   * @param withWebUi whether the server serves its Web UI ({@link #webUiUrl()})
   */
  static RealServerStack start(Path dir, boolean withWebUi) throws Exception {
    RealServerStack stack = new RealServerStack(dir, onPath("temporal"));
    try {
      stack.startAll(withWebUi);
      return stack;
    } catch (Exception | AssertionError e) {
      stack.close();
      throw e;
    }
  }

  private void startAll(boolean withWebUi) throws Exception {
    deleteTree(dir);
    Files.createDirectories(dir);

    // SITE_RECOVERY_REAL_TEMPORAL=host:port: a server of one's own, e.g. on PostgreSQL
    // (ops/postgres/temporal-server.sh), with its namespace default, instead of start-dev. The
    // Web UI tests always run start-dev, whose UI they drive.
    String external = withWebUi ? null : System.getenv("SITE_RECOVERY_REAL_TEMPORAL");
    int uiPort = FreePorts.next();
    if (external != null) {
      address = external;
    } else {
      int port = FreePorts.next();
      address = "127.0.0.1:" + port;
      // Every port of its own, so that this server never meets a developer's start-dev on 7233.
      List<String> server = new ArrayList<>(List.of(temporal, "server", "start-dev",
          "--ip", "127.0.0.1", "--port", String.valueOf(port),
          "--ui-ip", "127.0.0.1", "--ui-port", String.valueOf(uiPort),
          "--http-port", String.valueOf(FreePorts.next()),
          "--metrics-port", String.valueOf(FreePorts.next()), "--log-level", "warn"));
      if (!withWebUi) {
        server.add("--headless");
      }
      spawn("temporal-server", server);
    }
    awaitCommand("the Temporal server at " + address + " to answer",
        temporalCommand("operator", "cluster", "health"), out -> out.contains("SERVING"));
    webUi = withWebUi ? "http://127.0.0.1:" + uiPort : null;

    Path certs = dir.resolve("certs");
    runCli("certs", "init", "--dir", certs.toString(), "--site", "primary", "--site", "secondary");
    int primaryHttp = FreePorts.next();
    int secondaryHttp = FreePorts.next();
    primaryNbd = FreePorts.next();
    secondaryNbd = FreePorts.next();
    startAgent("primary", primaryHttp, primaryNbd, certs, "secondary", secondaryHttp);
    startAgent("secondary", secondaryHttp, secondaryNbd, certs, "primary", primaryHttp);

    // "default" cycles every 2 s so that README's rp-5 exists soon; "capped" makes the copy of
    // the scale-out test last long enough to kill its worker in the middle (uncompressed, as
    // the fill pattern would otherwise cross in no time).
    config = Files.writeString(dir.resolve("sites.json"), Json.MAPPER.writeValueAsString(Map.of(
        "temporal", address,
        "sites", Map.of("primary", "https://127.0.0.1:" + primaryHttp,
            "secondary", "https://127.0.0.1:" + secondaryHttp),
        "partners", Map.of("primary", "secondary", "secondary", "primary"),
        "certs", certs.toString(),
        "policies", Map.of(
            "default", Map.of("copyFrequency", "PT2S"),
            "capped", Map.of("copyFrequency", "PT5S", "bandwidthMBps", 2,
                "compression", false)))));
    worker1Http = FreePorts.next();
    worker1 = spawn("worker-1", cliCommand(List.of("-Xmx256m"), "worker", "--temporal", address,
        "--config", config.toString(), "--http-port", String.valueOf(worker1Http)));
    worker2 = spawn("worker-2", cliCommand(List.of("-Xmx256m"),
        "worker", "--temporal", address, "--config", config.toString(), "--http-port", "0"));
    awaitCommand("two workers polling task queue site-recovery",
        temporalCommand("task-queue", "describe", "--task-queue", "site-recovery", "-o", "json"),
        out -> workerIdentities(out).contains(identity(worker1))
            && workerIdentities(out).contains(identity(worker2)));
  }

  /** Stops every process, the last started first. */
  @Override
  public void close() throws InterruptedException {
    for (int i = started.size() - 1; i >= 0; i--) {
      Process p = started.get(i);
      p.destroy();
      if (!p.waitFor(20, TimeUnit.SECONDS)) {
        p.destroyForcibly().waitFor();
      }
    }
    started.clear();
  }

  Path dir() {
    return dir;
  }

  /** The server's gRPC address, host:port. */
  String address() {
    return address;
  }

  /** The Web UI's base URL; only for a stack started with it. */
  String webUiUrl() {
    if (webUi == null) {
      throw new IllegalStateException("this stack was started without the Web UI");
    }
    return webUi;
  }

  Path config() {
    return config;
  }

  int primaryNbd() {
    return primaryNbd;
  }

  int secondaryNbd() {
    return secondaryNbd;
  }

  /**
   * The first worker's readiness, read with curl and the monitor's certificate, as a probe or
   * Prometheus would.
   */
  String worker1Readiness() throws Exception {
    Path certs = dir.resolve("certs");
    return run(List.of("curl", "-sS", "--cacert", certs.resolve("ca.pem").toString(),
        "--cert", certs.resolve("monitor.pem").toString(),
        "--key", certs.resolve("monitor-key.pem").toString(),
        "https://127.0.0.1:" + worker1Http + "/actuator/health/readiness"), Duration.ofSeconds(30));
  }

  Process worker1() {
    return worker1;
  }

  Process worker2() {
    return worker2;
  }

  // --- processes ---

  private void startAgent(String site, int http, int nbd, Path certs, String peer, int peerHttp)
      throws Exception {
    Process agent = spawn("agent-" + site, cliCommand(List.of("-Xmx256m"), "agent",
        "--site", site, "--data", dir.resolve(site).toString(), "--http", String.valueOf(http),
        "--nbd", String.valueOf(nbd), "--certs", certs.toString(),
        "--peer", peer + "=https://127.0.0.1:" + peerHttp));
    Path log = dir.resolve("agent-" + site + ".log");
    awaitTrue("agent " + site + " up", () -> {
      if (!agent.isAlive()) {
        throw new AssertionError("agent " + site + " exited: " + Files.readString(log));
      }
      return Files.readString(log).contains("agent " + site + " up:");
    });
  }

  /**
   * {@code site-recovery ARGS} as a JVM of its own. The launcher script runs the runnable jar's
   * {@link SiteRecoveryCli}; tests run before the jar is packaged, so the same main class runs
   * from the test's class path, with the log file beside the other logs.
   */
  private List<String> cliCommand(List<String> jvmOptions, String... args) {
    List<String> command = new ArrayList<>();
    command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    command.addAll(jvmOptions);
    command.addAll(List.of("-cp", System.getProperty("java.class.path"),
        SiteRecoveryCli.class.getName()));
    command.addAll(List.of(args));
    return command;
  }

  void runCli(String... args) throws Exception {
    run(cliCommand(List.of(), args), STEP);
  }

  List<String> temporalCommand(String... args) {
    List<String> command = new ArrayList<>(List.of(temporal));
    command.addAll(List.of(args));
    command.addAll(List.of("--address", address));
    return command;
  }

  /** README's command as written, sent to this stack's server. */
  void runReadme(List<String> readmeCommand) throws Exception {
    List<String> command = new ArrayList<>(readmeCommand);
    command.set(0, temporal);
    command.addAll(List.of("--address", address));
    System.out.println(run(command, STEP).strip());
  }

  private Process spawn(String name, List<String> command) throws IOException {
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(dir.resolve(name + ".log").toFile());
    builder.environment().put("SITE_RECOVERY_LOG_FILE", dir.resolve(name + ".log.file")
        .toString());
    Process p = builder.start();
    started.add(p);
    return p;
  }

  /** Runs a command to its end; its output, or a failure naming the command and its output. */
  String run(List<String> command, Duration timeout) throws Exception {
    System.out.println("$ " + shown(command));
    Path out = Files.createTempFile(dir, "command", ".out");
    ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
        .redirectOutput(out.toFile());
    builder.environment().put("SITE_RECOVERY_LOG_FILE", dir.resolve("cli.log").toString());
    Process p = builder.start();
    if (!p.waitFor(timeout.toSeconds(), TimeUnit.SECONDS)) {
      p.destroyForcibly().waitFor();
      throw new AssertionError("still running after " + timeout + ": " + command);
    }
    String output = Files.readString(out);
    Files.delete(out);
    if (p.exitValue() != 0) {
      throw new AssertionError("exit " + p.exitValue() + ": " + String.join(" ", command) + "\n"
          + output);
    }
    return output;
  }

  /** As a person would type it: the program's name, and our CLI as {@code site-recovery}. */
  private static String shown(List<String> command) {
    int main = command.indexOf(SiteRecoveryCli.class.getName());
    List<String> words = new ArrayList<>(List.of(main < 0
        ? Path.of(command.get(0)).getFileName().toString() : "site-recovery"));
    command.subList(main < 0 ? 1 : main + 1, command.size()).stream()
        .map(w -> w.matches("[\\w./:=@,-]+") ? w : "'" + w + "'").forEach(words::add);
    return String.join(" ", words);
  }

  /** Output of a command that may fail until something is up, once it satisfies {@code ok}. */
  void awaitCommand(String what, List<String> command, Predicate<String> ok) throws Exception {
    String[] last = {""};
    awaitTrue(what, () -> {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      last[0] = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      return p.waitFor() == 0 && ok.test(last[0]);
    }, () -> "last answer: " + last[0]);
  }

  // --- workflows ---

  void awaitState(String workflowId, String state) throws Exception {
    awaitStatus(workflowId, state, s -> s.path("state").asText().equals(state));
  }

  /**
   * Polls {@code temporal workflow query --type status} until {@code ok} holds for the status,
   * and returns that status; fails at once when the workflow reports FAILED.
   */
  JsonNode awaitStatus(String workflowId, String what, Predicate<JsonNode> ok) throws Exception {
    JsonNode[] last = {null};
    String[] error = {""};
    awaitTrue(workflowId + ": " + what, () -> {
      Process p = new ProcessBuilder(temporalCommand("workflow", "query", "--workflow-id",
          workflowId, "--type", "status", "-o", "json")).redirectErrorStream(true).start();
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      if (p.waitFor() != 0) { // not started yet, or between workers: ask again
        error[0] = out;
        return false;
      }
      // One payload is printed as itself, several as a list.
      JsonNode result = Json.MAPPER.readTree(out).path("queryResult");
      JsonNode status = result.isArray() ? result.path(0) : result;
      last[0] = status;
      if (status.path("state").asText().equals("FAILED")) {
        throw new AssertionError(workflowId + " FAILED: " + status);
      }
      return ok.test(status);
    }, () -> "last status: " + last[0] + " " + error[0]);
    return last[0];
  }

  /** The SDK's default worker identity: {@code pid@host}. */
  static String identity(Process worker) {
    try {
      return worker.pid() + "@" + java.net.InetAddress.getLocalHost().getHostName();
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
  }

  private static List<String> workerIdentities(String describeJson) {
    try {
      return Json.MAPPER.readTree(describeJson).findValuesAsText("identity");
    } catch (IOException e) {
      return List.of();
    }
  }

  // --- disks ---

  Path image(String site, String vm) {
    return dir.resolve(site).resolve("vms").resolve(vm).resolve("disk0.img");
  }

  static String nbd(int port, String vm) {
    return "nbd://127.0.0.1:" + port + "/" + vm + "/disk0";
  }

  void qemuIo(int nbdPort, String vm, String write) throws Exception {
    run(List.of("qemu-io", "-f", "raw", "-c", write, nbd(nbdPort, vm)), STEP);
  }

  void qemuImgCompare(Path source, String replica) throws Exception {
    System.out.println(run(List.of("qemu-img", "compare", "-f", "raw", "-F", "raw",
        source.toString(), replica), STEP).strip());
  }

  /** The reverse replication's first cycle may still be on its way when its workflow says so. */
  void awaitCompare(Path source, String replica) throws Exception {
    awaitCommand("qemu-img compare " + source + " " + replica,
        List.of("qemu-img", "compare", "-f", "raw", "-F", "raw", source.toString(), replica),
        out -> true);
    System.out.println("qemu-img compare " + source + " " + replica + ": identical");
  }

  // --- helpers ---

  static String onPath(String program) {
    return Stream.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
        .map(d -> Path.of(d, program)).filter(Files::isExecutable).findFirst()
        .map(Path::toString).orElse(null);
  }

  static Path repositoryRoot() {
    Path here = Path.of("").toAbsolutePath();
    while (here != null && !Files.exists(here.resolve("run-tests"))) {
      here = here.getParent();
    }
    if (here == null) {
      throw new IllegalStateException("no repository root (with run-tests) above "
          + Path.of("").toAbsolutePath());
    }
    return here;
  }


  static void deleteTree(Path root) throws IOException {
    if (Files.exists(root)) {
      try (Stream<Path> paths = Files.walk(root)) {
        for (Path p : paths.sorted(Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
  }

  interface Check {
    boolean holds() throws Exception;
  }

  static void awaitTrue(String what, Check check) throws Exception {
    awaitTrue(what, check, () -> "");
  }

  /** Polls every 300 ms for up to {@link #STEP}. */
  static void awaitTrue(String what, Check check, Supplier<String> lastSeen) throws Exception {
    long deadline = System.nanoTime() + STEP.toNanos();
    while (!check.holds()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("waited " + STEP.toMinutes() + " min for " + what + "; "
            + lastSeen.get());
      }
      Thread.sleep(300);
    }
  }
}
