package io.siterecovery.workers.realserver;

import static io.siterecovery.workers.realserver.RealServerStack.STEP;
import static io.siterecovery.workers.realserver.RealServerStack.onPath;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.siterecovery.agent.Json;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The Temporal Web UI of {@code temporal server start-dev}, driven by a person's hands: headless
 * Chromium (Debian's) steered by playwright-core from the node scripts in {@code src/test/ui/},
 * against a {@link RealServerStack}. Each script prints what it saw and ends with
 * {@code RESULT {json}}; this test asserts on that and cross-checks with our own API (the
 * {@code status} query through the {@code temporal} CLI). Screenshots go to
 * {@code workers/target/ui-screenshots/}. Runs where temporal, node, Chromium and the scripts'
 * node_modules ({@code npm ci} in src/test/ui, which ./run-tests does) are present; otherwise
 * skips and says why.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class WebUiTest {
  private static final Path SCRIPTS = Path.of("src", "test", "ui").toAbsolutePath();
  private static final Path SCREENSHOTS = Path.of("target", "ui-screenshots").toAbsolutePath();
  private static final String CHROMIUM =
      System.getenv().getOrDefault("CHROMIUM", "/usr/bin/chromium");
  /** Per browser step: its own waits are shorter (20 s per action, 60 s for a poll). */
  private static final long SCRIPT_SECONDS = 120;
  private static final Set<String> COPYING_OR_PROTECTED =
      Set.of("ENABLING", "INITIAL_REPLICATION", "PROTECTED");

  /** Why the UI tests cannot run here, or null. */
  private String skipped;
  private String node;
  private RealServerStack stack;

  @BeforeAll
  void startTheStackWithItsWebUi() throws Exception {
    skipped = whyNot();
    if (skipped != null) {
      System.out.println("Web UI tests skipped: " + skipped);
      return;
    }
    RealServerStack.deleteTree(SCREENSHOTS); // no picture of an earlier run's failure stays
    Files.createDirectories(SCREENSHOTS);
    stack = RealServerStack.start(Path.of("target", "web-ui-server").toAbsolutePath(), true);
    System.out.println("Temporal Web UI at " + stack.webUiUrl());
  }

  private String whyNot() {
    String reason = RealServerStack.whyNot();
    if (reason != null) {
      return reason;
    }
    if (onPath("qemu-io") == null) {
      return "qemu-io (Debian qemu-utils) is not installed";
    }
    node = onPath("node");
    if (node == null) {
      return "node is not on the PATH (Debian nodejs; the browser steps are node scripts)";
    }
    if (!Files.isExecutable(Path.of(CHROMIUM))) {
      return CHROMIUM + " is not installed (Debian chromium; ./run-tests installs it)";
    }
    if (!Files.isDirectory(SCRIPTS.resolve("node_modules").resolve("playwright-core"))) {
      return "playwright-core is not installed in " + SCRIPTS + " (run `npm ci` there; "
          + "./run-tests does)";
    }
    return null;
  }

  /** Each test reports itself skipped, with the reason, rather than the class vanishing. */
  @BeforeEach
  void requireTheStack() {
    assumeTrue(skipped == null, skipped);
  }

  @AfterAll
  void stopEverything() throws InterruptedException {
    if (stack != null) {
      stack.close();
    }
  }

  @Test
  @Order(1)
  void theVmNameFilterShowsOnlyThatVmsWorkflows() throws Exception {
    ReadmeTemporalCommands readme =
        ReadmeTemporalCommands.load(RealServerStack.repositoryRoot().resolve("README.md"));
    createVm("web01");
    createVm("db01");
    stack.runReadme(readme.take("--type ProtectVm"));
    stack.run(stack.temporalCommand("workflow", "start", "--task-queue", "site-recovery",
        "--type", "ProtectVm", "--workflow-id", "protect-db01",
        "--input", "{\"vm\":\"db01\",\"policy\":\"default\"}"), STEP);
    stack.awaitState("protect-web01", "PROTECTED");
    stack.awaitState("protect-db01", "PROTECTED");

    JsonNode seen = browser("find-by-vm.mjs", "web01");

    List<String> shown = texts(seen.path("shown"));
    assertThat(shown).as("the list filtered by VmName=\"web01\"")
        .contains("protect-web01").doesNotContain("protect-db01")
        .isEqualTo(texts(seen.path("fromServer")));
  }

  @Test
  @Order(2)
  void theStartWorkflowFormStartsProtectVmWithItsJsonInput() throws Exception {
    createVm("web02");

    JsonNode seen = browser("start-workflow.mjs", "protect-web02", "site-recovery", "ProtectVm",
        "{\"vm\":\"web02\",\"policy\":\"default\"}");

    assertThat(Json.MAPPER.readTree(seen.path("sentInput").asText()))
        .as("the input the form sent")
        .isEqualTo(Json.MAPPER.readTree("{\"vm\":\"web02\",\"policy\":\"default\"}"));
    JsonNode described = Json.MAPPER.readTree(stack.run(stack.temporalCommand("workflow",
        "describe", "--workflow-id", "protect-web02", "-o", "json"), STEP));
    assertThat(described.findValue("runId").asText()).as("the run the UI started")
        .isEqualTo(seen.path("runId").asText());
    JsonNode status = stack.awaitStatus("protect-web02", "protecting web02",
        s -> COPYING_OR_PROTECTED.contains(s.path("state").asText()));
    assertThat(status.toString()).as("protect-web02's status").contains("web02");
    stack.awaitState("protect-web02", "PROTECTED");
  }

  /**
   * The workflow's own progress report ({@code Workflow.setCurrentDetails}), as the UI renders it
   * while an initial copy runs (capped at 2 MB/s: 40 MiB take about 20 s), names the state our
   * {@code status} query reports and shows the copy's progress, a fact a line; the summary the
   * CLI started it with is in the Summary panel.
   */
  @Test
  @Order(3)
  void theWorkflowPageShowsTheLiveProgressOfACopyInItsCurrentDetails() throws Exception {
    createVm("big01", "40M");
    stack.qemuIo(stack.primaryNbd(), "big01", "write -P 0x3c 0 40M"); // zeros would not be sent
    // Started by our CLI, which gives every workflow a summary.
    stack.runCli("protect", "big01", "--policy", "capped", "--config", stack.config().toString());
    String state = stack.awaitStatus("protect-big01", "copying",
        s -> s.path("progress").path("bytesDone").asLong() > 0).path("state").asText();
    assertThat(state).isEqualTo("INITIAL_REPLICATION");

    JsonNode seen = browser("current-details.mjs", "protect-big01", state + "[\\s\\S]*Progress");

    assertThat(seen.path("details").asText()).as("Current Details of protect-big01")
        .contains(state).containsPattern("Progress: \\[#*-*\\]")
        .as("the facts render as a list, a line each, not run into the state's line")
        .containsPattern("\\n\\s*Rate: ");
    assertThat(seen.path("summaries").toString()).as("the Summary panel")
        .contains("Protect big01, policy capped");
  }

  @Test
  @Order(4)
  void sendASignalCommitsAFailoverAwaitingIt() throws Exception {
    ReadmeTemporalCommands readme =
        ReadmeTemporalCommands.load(RealServerStack.repositoryRoot().resolve("README.md"));
    stack.awaitState("protect-web01", "PROTECTED");
    stack.runReadme(readme.take("workflow start", "\"PLANNED\""));
    stack.awaitState("failover-web01", "AWAITING_COMMIT");

    JsonNode seen = browser("send-signal.mjs", "failover-web01", "commit", "{}");

    assertThat(seen.path("status").asInt()).as("HTTP status of the UI's signal").isEqualTo(200);
    stack.awaitState("failover-web01", "COMMITTED");
  }

  // --- helpers ---

  private void createVm(String vm) throws Exception {
    createVm(vm, "16M");
  }

  private void createVm(String vm, String size) throws Exception {
    stack.runCli("vm", "create", vm, "--site", "primary", "--disk", size,
        "--config", stack.config().toString());
  }

  /**
   * Runs a browser step, echoing what it printed; its {@code RESULT} line, or a failure with its
   * output and the screenshot of where it stopped.
   */
  private JsonNode browser(String script, String... args) throws Exception {
    List<String> command = new ArrayList<>(List.of(node, SCRIPTS.resolve(script).toString()));
    command.addAll(List.of(args));
    System.out.println("$ node " + script + " " + String.join(" ", args));
    Path out = Files.createTempFile(stack.dir(), "browser", ".out");
    ProcessBuilder builder = new ProcessBuilder(command).directory(SCRIPTS.toFile())
        .redirectErrorStream(true).redirectOutput(out.toFile());
    builder.environment().put("WEB_UI_URL", stack.webUiUrl());
    builder.environment().put("SCREENSHOT_DIR", SCREENSHOTS.toString());
    builder.environment().put("CHROMIUM", CHROMIUM);
    Process p = builder.start();
    if (!p.waitFor(SCRIPT_SECONDS, TimeUnit.SECONDS)) {
      p.destroyForcibly().waitFor();
      throw new AssertionError(script + " still running after " + SCRIPT_SECONDS + " s:\n"
          + Files.readString(out));
    }
    String output = Files.readString(out);
    Files.delete(out);
    System.out.print(output.indent(2));
    assertThat(p.exitValue()).as(script + " exit code; it printed:\n" + output).isZero();
    String result = output.lines().filter(l -> l.startsWith("RESULT ")).reduce((a, b) -> b)
        .orElseThrow(() -> new AssertionError(script + " printed no RESULT line:\n" + output));
    return Json.MAPPER.readTree(result.substring("RESULT ".length()));
  }

  private static List<String> texts(JsonNode array) {
    List<String> texts = new ArrayList<>();
    array.forEach(n -> texts.add(n.asText()));
    return texts;
  }
}
