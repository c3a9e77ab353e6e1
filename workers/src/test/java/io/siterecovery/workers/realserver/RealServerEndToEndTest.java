package io.siterecovery.workers.realserver;

import static io.siterecovery.workers.realserver.RealServerStack.STEP;
import static io.siterecovery.workers.realserver.RealServerStack.awaitTrue;
import static io.siterecovery.workers.realserver.RealServerStack.identity;
import static io.siterecovery.workers.realserver.RealServerStack.nbd;
import static io.siterecovery.workers.realserver.RealServerStack.onPath;
import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import com.fasterxml.jackson.databind.JsonNode;
import io.siterecovery.agent.Json;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInstance;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * The real-server tier: {@link RealServerStack} ({@code temporal server start-dev}, two
 * {@code site-recovery worker} processes and one {@code site-recovery agent} per site), driven
 * the way an operator drives it: with the {@code temporal} commands copied from README.md at test
 * time. Runs when {@code temporal} is on the PATH ({@code ./run-tests} builds it once); otherwise
 * skips and says why. Logs and disks stay in {@code workers/target/real-server/} for a person to
 * read after a failure.
 */
@TestInstance(TestInstance.Lifecycle.PER_CLASS)
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class RealServerEndToEndTest {
  /** The capped copy of the scale-out test: 40 MiB at 2 MB/s, about 21 s. */
  private static final long BIG_DISK = 40L << 20;

  /** Why the tier cannot run here, or null. */
  private String skipped;
  private RealServerStack stack;
  private Path config;
  private int primaryNbd;
  private int secondaryNbd;

  @BeforeAll
  void startServerAgentsAndTwoWorkers() throws Exception {
    skipped = RealServerStack.whyNot();
    if (skipped == null && (onPath("qemu-io") == null || onPath("qemu-img") == null)) {
      skipped = "qemu-io and qemu-img (Debian qemu-utils) are not installed";
    }
    if (skipped != null) {
      System.out.println("real-server tests skipped: " + skipped);
      return;
    }
    stack = RealServerStack.start(Path.of("target", "real-server").toAbsolutePath(), false);
    config = stack.config();
    primaryNbd = stack.primaryNbd();
    secondaryNbd = stack.secondaryNbd();
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

  /**
   * README's whole block, in an order the lifecycle allows (a drill before the planned failover,
   * {@code changeRecoveryPoint} while it awaits commit, README's {@code commit} once more for the
   * failback's failover home), each step awaited through the {@code status} query.
   */
  /**
   * On a real server the worker's readiness asks the server whether it is among the task queue's
   * pollers (the embedded test server cannot say).
   */
  @Test
  @Order(0)
  void theWorkersReadinessFindsItAmongTheServersPollers() throws Exception {
    JsonNode ready = Json.MAPPER.readTree(stack.worker1Readiness());
    assertThat(ready.path("status").asText()).as("%s", ready).isEqualTo("UP");
    assertThat(ready.at("/components/temporalWorker/details/pollers").asInt())
        .as("%s", ready).isGreaterThanOrEqualTo(1);
    assertThat(ready.at("/components/agents/details/primary").asText()).isEqualTo("UP");
  }

  @Test
  @Order(1)
  void readmesTemporalCommandsRunTheLifecycleOnARealServer() throws Exception {
    ReadmeTemporalCommands readme =
        ReadmeTemporalCommands.load(RealServerStack.repositoryRoot().resolve("README.md"));
    stack.runCli("vm", "create", "web01", "--site", "primary", "--disk", "64M",
        "--config", config.toString());
    stack.qemuIo(primaryNbd, "web01", "write -P 0xab 0 1M");
    stack.qemuIo(primaryNbd, "web01", "write -P 0x5c 8M 2M");

    stack.runReadme(readme.take("--type ProtectVm"));
    stack.awaitState("protect-web01", "PROTECTED");
    stack.runReadme(readme.take("workflow query", "protect-web01"));
    stack.qemuIo(primaryNbd, "web01", "write -P 0x17 16M 1M");
    stack.awaitStatus("protect-web01", "PROTECTED with rp-5 and a later point",
        s -> s.path("state").asText().equals("PROTECTED")
            && s.path("latestRecoveryPoint").path("generation").asLong() > 5
            && s.path("recoveryPoints").findValuesAsText("id").contains("rp-5"));

    stack.runReadme(readme.take("workflow start", "test-failover-web01"));
    stack.awaitState("test-failover-web01", "TESTING");
    stack.runReadme(readme.take("--name cleanup"));
    stack.awaitState("test-failover-web01", "CLEANED_UP");

    stack.runReadme(readme.take("workflow start", "\"PLANNED\""));
    stack.awaitState("failover-web01", "AWAITING_COMMIT");
    // The running replica, read through its NBD export on the secondary site.
    stack.qemuImgCompare(stack.image("primary", "web01"), nbd(secondaryNbd, "web01"));
    stack.runReadme(readme.take("--name changeRecoveryPoint"));
    stack.awaitStatus("failover-web01", "AWAITING_COMMIT at rp-5",
        s -> s.path("state").asText().equals("AWAITING_COMMIT")
            && s.path("recoveryPoint").path("id").asText().equals("rp-5"));
    List<String> commit = readme.take("failover-web01", "--name commit");
    stack.runReadme(commit);
    stack.awaitState("failover-web01", "COMMITTED");

    stack.runReadme(readme.take("--type Reprotect"));
    stack.awaitState("reprotect-web01", "PROTECTED");
    // Reprotect started the reverse protection as its child, summary and all.
    assertThat(staticSummary("protect-web01"))
        .isEqualTo("Protect web01: secondary → primary, policy default");
    // The old disks on primary now replicate what web01 runs on secondary.
    stack.awaitCompare(stack.image("primary", "web01"), nbd(secondaryNbd, "web01"));

    stack.runReadme(readme.take("--type Failback"));
    stack.awaitStatus("failover-web01", "AWAITING_COMMIT on the way home",
        s -> s.path("state").asText().equals("AWAITING_COMMIT")
            && s.path("targetSite").asText().equals("primary"));
    stack.runReadme(commit);
    stack.awaitState("failback-web01", "COMPLETED");
    stack.awaitCompare(stack.image("secondary", "web01"), nbd(primaryNbd, "web01"));

    assertThat(readme.notRun()).as("README's temporal commands this scenario never ran")
        .isEmpty();
    String listed = stack.run(stack.temporalCommand("workflow", "list", "--query", "VmName='web01'",
        "-o", "json"), STEP);
    assertThat(Json.MAPPER.readTree(listed).findValuesAsText("workflowId"))
        .as("temporal workflow list --query \"VmName='web01'\"")
        .contains("protect-web01", "test-failover-web01", "failover-web01", "reprotect-web01",
            "failback-web01");
    System.out.printf("%d README temporal commands ran against the Temporal server at %s%n",
        readme.size(), stack.address());
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
    stack.runCli("vm", "create", "big01", "--site", "primary", "--disk", "40M",
        "--config", config.toString());
    stack.qemuIo(primaryNbd, "big01", "write -P 0x3c 0 40M");
    stack.runCli("protect", "big01", "--policy", "capped", "--config", config.toString());
    stack.awaitStatus("protect-big01", "a quarter of the initial copy across",
        s -> s.path("progress").path("bytesDone").asLong() >= BIG_DISK / 4);
    // What the Web UI shows on the workflow's page: the summary the CLI started it with, and
    // the current details, read as the UI reads them.
    assertThat(staticSummary("protect-big01")).isEqualTo("Protect big01, policy capped");
    String metadata = stack.run(stack.temporalCommand("workflow", "query", "--workflow-id",
        "protect-big01", "--type", "__temporal_workflow_metadata", "-o", "json"), STEP);
    JsonNode result = Json.MAPPER.readTree(metadata).path("queryResult");
    String details = (result.isArray() ? result.path(0) : result).path("currentDetails").asText();
    System.out.println("current details of protect-big01:\n" + details);
    assertThat(details).startsWith("**INITIAL_REPLICATION** · health **NORMAL**\n")
        .containsPattern("- Progress: `\\[#+-*\\] +\\d+ %` [\\d.]+ MiB of 40\\.0 MiB "
            + "\\(INITIAL_REPLICATION, disk0\\)\n")
        .containsPattern("- Rate: [\\d.]+ MiB/s · ETA \\d+ s")
        .contains("- Route: primary → secondary, policy capped\n");

    String copier = copyActivityWorker("protect-big01-initial");
    Process victim = copier.equals(identity(stack.worker1())) ? stack.worker1()
        : copier.equals(identity(stack.worker2())) ? stack.worker2() : null;
    assertThat(victim).as("the copy's worker " + copier + " is one of ours").isNotNull();
    Process survivor = victim == stack.worker1() ? stack.worker2() : stack.worker1();
    System.out.println("kill -9 " + victim.pid() + " (the worker running the copy)");
    long killed = System.nanoTime();
    victim.destroyForcibly().waitFor();

    stack.awaitState("protect-big01", "PROTECTED");
    System.out.printf("the other worker finished the copy %.1f s after the kill%n",
        (System.nanoTime() - killed) / 1e9);
    assertThat(survivor.isAlive()).isTrue();
    // The history records the attempt that completed the copy, and which worker ran it.
    JsonNode started = copyActivityStarted("protect-big01-initial");
    assertThat(started.path("identity").asText()).as("the worker of the copy's last attempt")
        .isEqualTo(identity(survivor));
    assertThat(started.path("attempt").asInt()).as("attempt of the copy").isGreaterThan(1);
    stack.qemuImgCompare(stack.image("primary", "big01"),
        stack.image("secondary", "big01").toString());
  }

  // --- workflows ---

  /** The summary the Web UI shows for the workflow's latest run, as the server describes it. */
  private String staticSummary(String workflowId) throws Exception {
    return Json.MAPPER.readTree(stack.run(stack.temporalCommand("workflow", "describe",
        "--workflow-id", workflowId, "-o", "json"), STEP)).path("executionConfig")
        .path("userMetadata").path("summary").asText();
  }

  /** The identity of the worker running the copy activity of an initial replication. */
  private String copyActivityWorker(String workflowId) throws Exception {
    String[] worker = {null};
    awaitTrue("the CopyDisk activity of " + workflowId + " running", () -> {
      JsonNode described = Json.MAPPER.readTree(stack.run(stack.temporalCommand("workflow",
          "describe", "--workflow-id", workflowId, "-o", "json"), STEP));
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
    JsonNode events = Json.MAPPER.readTree(stack.run(stack.temporalCommand("workflow", "show",
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
}
