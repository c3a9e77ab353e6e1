package io.siterecovery.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.DemoScenario;
import io.siterecovery.workers.dev.DevStack;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.siterecovery.workflows.plan.Approval;
import io.siterecovery.workflows.plan.PlanOperation;
import io.siterecovery.workflows.plan.PlanState;
import io.siterecovery.workflows.plan.PlanStatus;
import io.siterecovery.workflows.plan.RecoveryPlanInput;
import io.siterecovery.workflows.plan.RecoveryPlanWorkflow;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.temporal.api.workflow.v1.WorkflowExecutionInfo;
import io.temporal.api.workflowservice.v1.ListClosedWorkflowExecutionsRequest;
import io.temporal.api.workflowservice.v1.ListClosedWorkflowExecutionsResponse;
import io.temporal.api.workflowservice.v1.ListOpenWorkflowExecutionsRequest;
import io.temporal.api.workflowservice.v1.ListOpenWorkflowExecutionsResponse;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import com.google.protobuf.ByteString;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.junit.jupiter.api.io.TempDir;

/**
 * Not a test: the tool that records workflow histories from real runs (the dev stack: Temporal's
 * test server, the worker, two real agents) for {@code RecordedHistoriesReplayTest} in the
 * workflows module. Runs only when asked, with the folder to write to:
 *
 * <pre>
 * mvn -B -o -pl workers -am test -Dtest=RecordRealHistories -Dsurefire.failIfNoSpecifiedTests=false \
 *     -DrecordHistories=$PWD/workflows/src/test/resources/histories [-DrecordHistories.tag=v2]
 * </pre>
 *
 * <p>{@code demo}: the {@code ./site-recovery demo} scenario as it is ({@link DemoScenario}).
 * {@code plan}: a two-group recovery plan (a script after the first group, an approval before the
 * second's planned failover): TEST_FAILOVER then cleanup, PLANNED_FAILOVER then commit. After each,
 * while the stack is still up, every run of every workflow execution (open ones too) is saved as
 * {@code real-<type>-<scenario>[-<tag>]-<workflowId>[-run<n>].json}. It never overwrites a file:
 * recorded histories are only worth anything as what older code wrote.
 */
@EnabledIfSystemProperty(named = "recordHistories", matches = ".+")
class RecordRealHistories {
  private static final long MIB = 1 << 20;

  @TempDir
  Path data;

  private static Path out() throws IOException {
    return Files.createDirectories(Path.of(System.getProperty("recordHistories")));
  }

  private static String tag() {
    String tag = System.getProperty("recordHistories.tag", "");
    return tag.isBlank() ? "" : "-" + tag;
  }

  @Test
  void demo() throws Exception {
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of(DemoScenario.POLICY, DemoScenario.policy()))) {
      assertThat(new DemoScenario(stack, System.out).run()).as("demo verified").isTrue();
      save(stack.client(), "demo");
    }
  }

  /** Two groups of one VM each: db (a script after it), web (an approval before a failover). */
  private static final SiteRecoveryConfig.Plan SHOP = new SiteRecoveryConfig.Plan(List.of(
      new SiteRecoveryConfig.Group("db", List.of("db01"), List.of(), List.of(
          new SiteRecoveryConfig.Action("check-db", null, Duration.ofSeconds(30), null))),
      new SiteRecoveryConfig.Group("web", List.of("web01"), List.of(
          new SiteRecoveryConfig.Action(null, "confirm the database answers", null,
              List.of("PLANNED_FAILOVER"))), List.of())), 2);

  @Test
  void plan() throws Exception {
    for (String site : List.of("primary", "secondary")) {
      Path script = Files.createDirectories(data.resolve(site + "/scripts")).resolve("check-db");
      Files.writeString(script, "#!/bin/sh\necho \"$SR_OPERATION of $SR_GROUP on $SR_SITE\"\n");
      Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of(DemoScenario.POLICY, DemoScenario.policy()), Map.of("shop", SHOP))) {
      WorkflowClient client = stack.client();
      Random random = new Random(5);
      for (String vm : List.of("db01", "web01")) {
        stack.operatorClient(stack.primary()).createVm(vm, List.of(8 * MIB));
        try (NbdClient nbd = new NbdClient("127.0.0.1", stack.primary().nbdPort(),
            vm + "/disk0")) {
          byte[] block = new byte[64 * 1024];
          for (int i = 0; i < 16; i++) {
            random.nextBytes(block);
            nbd.write((long) random.nextInt(128) * block.length, block, true);
          }
        }
        WorkflowClient.start(stub(client, ProtectVmWorkflow.class,
            ProtectVmWorkflow.workflowId(vm))::protect, new ProtectVmInput(vm, DemoScenario.POLICY));
      }
      for (String vm : List.of("db01", "web01")) {
        ProtectVmWorkflow p = client.newWorkflowStub(ProtectVmWorkflow.class,
            ProtectVmWorkflow.workflowId(vm));
        Eventually.await(() -> p.status().state() == ProtectionState.PROTECTED
            && p.status().latestRecoveryPoint() != null);
      }

      RecoveryPlanWorkflow drill = start(client, PlanOperation.TEST_FAILOVER);
      Eventually.await(() -> drill.status().state() == PlanState.AWAITING_CLEANUP);
      drill.cleanup(new CleanupRequest("recorded drill"));
      PlanStatus drilled = WorkflowStub.fromTyped(drill).getResult(PlanStatus.class);
      assertThat(drilled.state()).as("%s", drilled.failures()).isEqualTo(PlanState.COMPLETED);

      RecoveryPlanWorkflow failover = start(client, PlanOperation.PLANNED_FAILOVER);
      Eventually.await(() -> failover.status().state() == PlanState.AWAITING_APPROVAL);
      failover.approve(new Approval("confirm the database answers", "recorder"));
      Eventually.await(() -> failover.status().state() == PlanState.AWAITING_COMMIT);
      failover.commit(new OperatorRequest("recorder"));
      PlanStatus done = WorkflowStub.fromTyped(failover).getResult(PlanStatus.class);
      assertThat(done.state()).as("%s", done.failures()).isEqualTo(PlanState.COMPLETED);
      save(client, "plan");
    }
  }

  private static RecoveryPlanWorkflow start(WorkflowClient client, PlanOperation operation) {
    WorkflowClient.start(stub(client, RecoveryPlanWorkflow.class,
        RecoveryPlanWorkflow.workflowId("shop"))::run,
        new RecoveryPlanInput("shop", operation, null, null));
    return client.newWorkflowStub(RecoveryPlanWorkflow.class,
        RecoveryPlanWorkflow.workflowId("shop"));
  }

  private static <T> T stub(WorkflowClient client, Class<T> type, String id) {
    return client.newWorkflowStub(type, WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE).setWorkflowId(id).build());
  }

  /** Every run of every execution the server knows, open or closed, one file each. */
  private static void save(WorkflowClient client, String scenario) throws IOException {
    String namespace = client.getOptions().getNamespace();
    var service = client.getWorkflowServiceStubs().blockingStub();
    List<WorkflowExecutionInfo> runs = new ArrayList<>();
    ByteString page = ByteString.EMPTY;
    do {
      ListOpenWorkflowExecutionsResponse open = service.listOpenWorkflowExecutions(
          ListOpenWorkflowExecutionsRequest.newBuilder().setNamespace(namespace)
              .setMaximumPageSize(1000).setNextPageToken(page).build());
      runs.addAll(open.getExecutionsList());
      page = open.getNextPageToken();
    } while (!page.isEmpty());
    do {
      ListClosedWorkflowExecutionsResponse closed = service.listClosedWorkflowExecutions(
          ListClosedWorkflowExecutionsRequest.newBuilder().setNamespace(namespace)
              .setMaximumPageSize(1000).setNextPageToken(page).build());
      runs.addAll(closed.getExecutionsList());
      page = closed.getNextPageToken();
    } while (!page.isEmpty());
    Map<String, List<WorkflowExecutionInfo>> byId = new LinkedHashMap<>();
    runs.stream().sorted(Comparator.comparing((WorkflowExecutionInfo i) ->
            i.getExecution().getWorkflowId())
            .thenComparingLong(i -> i.getStartTime().getSeconds() * 1_000_000_000L
                + i.getStartTime().getNanos()))
        .forEach(i -> byId.computeIfAbsent(i.getExecution().getWorkflowId(),
            k -> new ArrayList<>()).add(i));
    Path dir = out();
    for (var id : byId.entrySet()) {
      for (int n = 0; n < id.getValue().size(); n++) {
        WorkflowExecutionInfo info = id.getValue().get(n);
        String name = "real-" + info.getType().getName().toLowerCase(Locale.ROOT) + "-" + scenario
            + tag() + "-" + id.getKey() + (id.getValue().size() > 1 ? "-run" + (n + 1) : "")
            + ".json";
        String json = client.fetchHistory(id.getKey(), info.getExecution().getRunId())
            .toJson(true);
        Path file = dir.resolve(name);
        Files.writeString(file, json + "\n", java.nio.file.StandardOpenOption.CREATE_NEW);
        System.out.printf("recorded %s (%s, %d bytes)%n", file, info.getStatus(),
            Files.size(file));
      }
    }
  }
}
