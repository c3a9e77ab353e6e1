package io.siterecovery.workers.realserver;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.siterecovery.agent.Json;
import io.siterecovery.workers.cli.SiteRecoveryCli;
import java.io.File;
import java.io.IOException;
import java.net.ServerSocket;
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
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The real-server tier: {@code temporal server start-dev} (the server operators run, with its
 * visibility store and search attributes, unlike the embedded test server), two
 * {@code site-recovery worker} processes and one {@code site-recovery agent} per site, all child
 * processes, driven the way an operator drives them: with the {@code temporal} commands copied
 * from README.md at test time. Runs when {@code temporal} is on the PATH ({@code ./run-tests}
 * builds it once); otherwise skips and says why. Logs and disks stay in
 * {@code workers/target/real-server/} for a person to read after a failure.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RealServerEndToEndTest {
  private static final Duration STEP = Duration.ofMinutes(3);
  /** The capped copy of the scale-out test: 40 MiB at 2 MB/s, about 21 s. */
  private static final long BIG_DISK = 40L << 20;

  private final Path dir = Path.of("target", "real-server").toAbsolutePath();
  private final List<Process> started = new ArrayList<>();
  /** Why the tier cannot run here, or null. */
  private String skipped;
  private String temporal;
  private String address;
  private Path config;
  private int primaryNbd;
  private int secondaryNbd;
  private Process worker1;
  private Process worker2;

  @BeforeAll
  void startServerAgentsAndTwoWorkers() throws Exception {
    temporal = onPath("temporal");
    if (temporal == null) {
      skipped = "the temporal CLI is not on the PATH; ./run-tests builds it with "
          + "`go install github.com/temporalio/cli/cmd/temporal@v1.5.1` into ~/go/bin";
    } else if (onPath("qemu-io") == null || onPath("qemu-img") == null) {
      skipped = "qemu-io and qemu-img (Debian qemu-utils) are not installed";
    }
    if (skipped != null) {
      System.out.println("real-server tests skipped: " + skipped);
      return;
    }
    deleteTree(dir);
    Files.createDirectories(dir);

    // SITE_RECOVERY_REAL_TEMPORAL=host:port: a server of one's own, e.g. on PostgreSQL
    // (ops/postgres/temporal-server.sh), with its namespace default, instead of start-dev.
    address = System.getenv("SITE_RECOVERY_REAL_TEMPORAL");
    if (address == null) {
      int port = freePort();
      address = "127.0.0.1:" + port;
      // Every port of its own, so that this server never meets a developer's start-dev on 7233.
      spawn("temporal-server", List.of(temporal, "server", "start-dev", "--headless",
          "--ip", "127.0.0.1", "--port", String.valueOf(port),
          "--ui-port", String.valueOf(freePort()), "--http-port", String.valueOf(freePort()),
          "--metrics-port", String.valueOf(freePort()), "--log-level", "warn"));
    }
    awaitCommand("the Temporal server at " + address + " to answer",
        temporalCommand("operator", "cluster", "health"), out -> out.contains("SERVING"));

    Path certs = dir.resolve("certs");
    runCli("certs", "init", "--dir", certs.toString(), "--site", "primary", "--site", "secondary");
    int primaryHttp = freePort();
    int secondaryHttp = freePort();
    primaryNbd = freePort();
    secondaryNbd = freePort();
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
    worker1 = spawn("worker-1", cliCommand(List.of("-Xmx256m"),
        "worker", "--temporal", address, "--config", config.toString(), "--http-port", "0"));
    worker2 = spawn("worker-2", cliCommand(List.of("-Xmx256m"),
        "worker", "--temporal", address, "--config", config.toString(), "--http-port", "0"));
    awaitCommand("two workers polling task queue site-recovery",
        temporalCommand("task-queue", "describe", "--task-queue", "site-recovery", "-o", "json"),
        out -> workerIdentities(out).contains(identity(worker1))
            && workerIdentities(out).contains(identity(worker2)));
  }

  /** Each test reports itself skipped, with the reason, rather than the class vanishing. */
  @BeforeEach
  void requireTheStack() {
    assumeTrue(skipped == null, skipped);
  }

  @AfterAll
  void stopEverything() throws InterruptedException {
    for (int i = started.size() - 1; i >= 0; i--) {
      Process p = started.get(i);
      p.destroy();
      if (!p.waitFor(20, TimeUnit.SECONDS)) {
        p.destroyForcibly().waitFor();
      }
    }
  }

  /**
   * README's whole block, in an order the lifecycle allows (a drill before the planned failover,
   * {@code changeRecoveryPoint} while it awaits commit, README's {@code commit} once more for the
   * failback's failover home), each step awaited through the {@code status} query.
   */
  @Test
  @Order(1)
  void readmesTemporalCommandsRunTheLifecycleOnARealServer() throws Exception {
    ReadmeTemporalCommands readme =
        ReadmeTemporalCommands.load(repositoryRoot().resolve("README.md"));
    runCli("vm", "create", "web01", "--site", "primary", "--disk", "64M",
        "--config", config.toString());
    qemuIo(primaryNbd, "web01", "write -P 0xab 0 1M");
    qemuIo(primaryNbd, "web01", "write -P 0x5c 8M 2M");

    runReadme(readme.take("--type ProtectVm"));
    awaitState("protect-web01", "PROTECTED");
    runReadme(readme.take("workflow query", "protect-web01"));
    qemuIo(primaryNbd, "web01", "write -P 0x17 16M 1M");
    awaitStatus("protect-web01", "PROTECTED with rp-5 and a later point",
        s -> s.path("state").asText().equals("PROTECTED")
            && s.path("latestRecoveryPoint").path("generation").asLong() > 5
            && s.path("recoveryPoints").findValuesAsText("id").contains("rp-5"));

    runReadme(readme.take("workflow start", "test-failover-web01"));
    awaitState("test-failover-web01", "TESTING");
    runReadme(readme.take("--name cleanup"));
    awaitState("test-failover-web01", "CLEANED_UP");

    runReadme(readme.take("workflow start", "\"PLANNED\""));
    awaitState("failover-web01", "AWAITING_COMMIT");
    // The running replica, read through its NBD export on the secondary site.
    qemuImgCompare(image("primary", "web01"), nbd(secondaryNbd, "web01"));
    runReadme(readme.take("--name changeRecoveryPoint"));
    awaitStatus("failover-web01", "AWAITING_COMMIT at rp-5",
        s -> s.path("state").asText().equals("AWAITING_COMMIT")
            && s.path("recoveryPoint").path("id").asText().equals("rp-5"));
    List<String> commit = readme.take("failover-web01", "--name commit");
    runReadme(commit);
    awaitState("failover-web01", "COMMITTED");

    runReadme(readme.take("--type Reprotect"));
    awaitState("reprotect-web01", "PROTECTED");
    // Reprotect started the reverse protection as its child, summary and all.
    assertThat(staticSummary("protect-web01"))
        .isEqualTo("Protect web01: secondary → primary, policy default");
    // The old disks on primary now replicate what web01 runs on secondary.
    awaitCompare(image("primary", "web01"), nbd(secondaryNbd, "web01"));

    runReadme(readme.take("--type Failback"));
    awaitStatus("failover-web01", "AWAITING_COMMIT on the way home",
        s -> s.path("state").asText().equals("AWAITING_COMMIT")
            && s.path("targetSite").asText().equals("primary"));
    runReadme(commit);
    awaitState("failback-web01", "COMPLETED");
    awaitCompare(image("secondary", "web01"), nbd(primaryNbd, "web01"));

    assertThat(readme.notRun()).as("README's temporal commands this scenario never ran")
        .isEmpty();
    String listed = run(temporalCommand("workflow", "list", "--query", "VmName='web01'",
        "-o", "json"), STEP);
    assertThat(Json.MAPPER.readTree(listed).findValuesAsText("workflowId"))
        .as("temporal workflow list --query \"VmName='web01'\"")
        .contains("protect-web01", "test-failover-web01", "failover-web01", "reprotect-web01",
            "failback-web01");
    System.out.printf("%d README temporal commands ran against temporal server start-dev%n",
        readme.size());
  }

  /**
   * Workers are stateless and share the task queue: the one running a copy is killed with
   * {@code kill -9} in the middle of it, and the other finishes it (after the copy activity's
   * heartbeat timeout) with a replica equal to the source. Started with {@code site-recovery
   * protect}, the copy's page in the Web UI shows the CLI's summary and the copy's progress bar.
   */
  @Test
  @Order(2)
  void theOtherWorkerFinishesTheCopyOfAWorkerKilledInTheMiddle() throws Exception {
    runCli("vm", "create", "big01", "--site", "primary", "--disk", "40M",
        "--config", config.toString());
    qemuIo(primaryNbd, "big01", "write -P 0x3c 0 40M");
    runCli("protect", "big01", "--policy", "capped", "--config", config.toString());
    awaitStatus("protect-big01", "a quarter of the initial copy across",
        s -> s.path("progress").path("bytesDone").asLong() >= BIG_DISK / 4);
    // What the Web UI shows on the workflow's page: the summary the CLI started it with, and
    // the current details, read as the UI reads them.
    assertThat(staticSummary("protect-big01")).isEqualTo("Protect big01, policy capped");
    String metadata = run(temporalCommand("workflow", "query", "--workflow-id", "protect-big01",
        "--type", "__temporal_workflow_metadata", "-o", "json"), STEP);
    JsonNode result = Json.MAPPER.readTree(metadata).path("queryResult");
    String details = (result.isArray() ? result.path(0) : result).path("currentDetails").asText();
    System.out.println("current details of protect-big01:\n" + details);
    assertThat(details).startsWith("**INITIAL_REPLICATION** · health **NORMAL**\n")
        .containsPattern("- Progress: `\\[#+-*\\] +\\d+ %` [\\d.]+ MiB of 40\\.0 MiB "
            + "\\(INITIAL_REPLICATION, disk0\\)\n")
        .containsPattern("- Rate: [\\d.]+ MiB/s · ETA \\d+ s")
        .contains("- Route: primary → secondary, policy capped\n");

    String copier = copyActivityWorker("protect-big01-initial");
    Process victim = copier.equals(identity(worker1)) ? worker1
        : copier.equals(identity(worker2)) ? worker2 : null;
    assertThat(victim).as("the copy's worker " + copier + " is one of ours").isNotNull();
    Process survivor = victim == worker1 ? worker2 : worker1;
    System.out.println("kill -9 " + victim.pid() + " (the worker running the copy)");
    long killed = System.nanoTime();
    victim.destroyForcibly().waitFor();

    awaitState("protect-big01", "PROTECTED");
    System.out.printf("the other worker finished the copy %.1f s after the kill%n",
        (System.nanoTime() - killed) / 1e9);
    assertThat(survivor.isAlive()).isTrue();
    // The history records the attempt that completed the copy, and which worker ran it.
    JsonNode started = copyActivityStarted("protect-big01-initial");
    assertThat(started.path("identity").asText()).as("the worker of the copy's last attempt")
        .isEqualTo(identity(survivor));
    assertThat(started.path("attempt").asInt()).as("attempt of the copy").isGreaterThan(1);
    qemuImgCompare(image("primary", "big01"), image("secondary", "big01").toString());
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

  private void runCli(String... args) throws Exception {
    run(cliCommand(List.of(), args), STEP);
  }

  private List<String> temporalCommand(String... args) {
    List<String> command = new ArrayList<>(List.of(temporal));
    command.addAll(List.of(args));
    command.addAll(List.of("--address", address));
    return command;
  }

  /** README's command as written, sent to this test's server. */
  private void runReadme(List<String> readmeCommand) throws Exception {
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
  private String run(List<String> command, Duration timeout) throws Exception {
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
  private void awaitCommand(String what, List<String> command, Predicate<String> ok)
      throws Exception {
    String[] last = {""};
    awaitTrue(what, () -> {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      last[0] = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      return p.waitFor() == 0 && ok.test(last[0]);
    }, () -> "last answer: " + last[0]);
  }

  // --- workflows ---

  private void awaitState(String workflowId, String state) throws Exception {
    awaitStatus(workflowId, state, s -> s.path("state").asText().equals(state));
  }

  /**
   * Polls {@code temporal workflow query --type status} until {@code ok} holds for the status;
   * fails at once when the workflow reports FAILED.
   */
  private void awaitStatus(String workflowId, String what, Predicate<JsonNode> ok)
      throws Exception {
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
  }

  /** The summary the Web UI shows for the workflow's latest run, as the server describes it. */
  private String staticSummary(String workflowId) throws Exception {
    return Json.MAPPER.readTree(run(temporalCommand("workflow", "describe", "--workflow-id",
        workflowId, "-o", "json"), STEP)).path("executionConfig").path("userMetadata")
        .path("summary").asText();
  }

  /** The identity of the worker running the copy activity of an initial replication. */
  private String copyActivityWorker(String workflowId) throws Exception {
    String[] worker = {null};
    awaitTrue("the CopyDisk activity of " + workflowId + " running", () -> {
      JsonNode described = Json.MAPPER.readTree(run(temporalCommand("workflow", "describe",
          "--workflow-id", workflowId, "-o", "json"), STEP));
      for (JsonNode a : described.path("pendingActivities")) {
        if (a.path("activityType").path("name").asText().equals("CopyDisk")
            && !a.path("lastWorkerIdentity").asText().isEmpty()) {
          worker[0] = a.path("lastWorkerIdentity").asText();
        }
      }
      return worker[0] != null;
    });
    return worker[0];
  }

  /** The ActivityTaskStarted attributes of the CopyDisk activity in a workflow's history. */
  private JsonNode copyActivityStarted(String workflowId) throws Exception {
    JsonNode events = Json.MAPPER.readTree(run(temporalCommand("workflow", "show",
        "--workflow-id", workflowId, "-o", "json"), STEP)).path("events");
    List<String> copies = new ArrayList<>();
    for (JsonNode e : events) {
      if (e.path("activityTaskScheduledEventAttributes").path("activityType").path("name")
          .asText().equals("CopyDisk")) {
        copies.add(e.path("eventId").asText());
      }
    }
    for (JsonNode e : events) {
      JsonNode started = e.path("activityTaskStartedEventAttributes");
      if (copies.contains(started.path("scheduledEventId").asText())) {
        return started;
      }
    }
    throw new AssertionError("no CopyDisk activity started in " + workflowId + "'s history");
  }

  /** The SDK's default worker identity: {@code pid@host}. */
  private static String identity(Process worker) {
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

  private Path image(String site, String vm) {
    return dir.resolve(site).resolve("vms").resolve(vm).resolve("disk0.img");
  }

  private static String nbd(int port, String vm) {
    return "nbd://127.0.0.1:" + port + "/" + vm + "/disk0";
  }

  private void qemuIo(int nbdPort, String vm, String write) throws Exception {
    run(List.of("qemu-io", "-f", "raw", "-c", write, nbd(nbdPort, vm)), STEP);
  }

  private void qemuImgCompare(Path source, String replica) throws Exception {
    System.out.println(run(List.of("qemu-img", "compare", "-f", "raw", "-F", "raw",
        source.toString(), replica), STEP).strip());
  }

  /** The reverse replication's first cycle may still be on its way when its workflow says so. */
  private void awaitCompare(Path source, String replica) throws Exception {
    awaitCommand("qemu-img compare " + source + " " + replica,
        List.of("qemu-img", "compare", "-f", "raw", "-F", "raw", source.toString(), replica),
        out -> true);
    System.out.println("qemu-img compare " + source + " " + replica + ": identical");
  }

  // --- helpers ---

  private static String onPath(String program) {
    return Stream.of(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
        .map(d -> Path.of(d, program)).filter(Files::isExecutable).findFirst()
        .map(Path::toString).orElse(null);
  }

  private static Path repositoryRoot() {
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

  private static int freePort() throws IOException {
    try (ServerSocket s = new ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  private static void deleteTree(Path root) throws IOException {
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

  private static void awaitTrue(String what, Check check) throws Exception {
    awaitTrue(what, check, () -> "");
  }

  /** Polls every 300 ms for up to {@link #STEP}. */
  private static void awaitTrue(String what, Check check,
      java.util.function.Supplier<String> lastSeen) throws Exception {
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
