package io.siterecovery.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.DevStack;
import io.siterecovery.workers.dev.DiskCompare;
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
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A three-group recovery plan on real agents: a drill (TEST_FAILOVER, cleanup), then the real thing
 * (PLANNED_FAILOVER with a script and an approval, commit), REPROTECT and FAILBACK, the replicas
 * checked byte for byte at the failover and at home again.
 */
class PlanEndToEndTest {
  private static final long MIB = 1 << 20;
  private static final List<String> VMS = List.of("db01", "app01", "web01");
  private static final SiteRecoveryConfig.Policy FAST = new SiteRecoveryConfig.Policy(
      Duration.ofSeconds(1), Duration.ofMinutes(2), Duration.ofHours(1), null, null, null, false,
      null, null);
  private static final SiteRecoveryConfig.Plan SHOP = new SiteRecoveryConfig.Plan(List.of(
      new SiteRecoveryConfig.Group("db", List.of("db01"), List.of(), List.of(
          new SiteRecoveryConfig.Action("check-db", null, Duration.ofSeconds(30), null))),
      new SiteRecoveryConfig.Group("app", List.of("app01"), List.of(), List.of()),
      new SiteRecoveryConfig.Group("web", List.of("web01"), List.of(), List.of(
          new SiteRecoveryConfig.Action(null, "confirm the shop answers", null,
              List.of("PLANNED_FAILOVER"))))), 2);

  @TempDir
  Path data;

  private WorkflowClient client;

  @Test
  void aDrillThenTheRealFailoverReprotectAndFailbackOfAThreeGroupPlan() throws Exception {
    // The script runs where the group's VMs run after the step: secondary, then home again.
    for (String site : List.of("primary", "secondary")) {
      Path script = Files.createDirectories(data.resolve(site + "/scripts")).resolve("check-db");
      Files.writeString(script, "#!/bin/sh\necho \"plan=$SR_PLAN op=$SR_OPERATION "
          + "group=$SR_GROUP\"\ngrep -q db01 \"$SR_CONTEXT_FILE\" && echo context-ok\n");
      Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", FAST), Map.of("shop", SHOP))) {
      client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      protectAll(stack, new Random(13));

      // -- the drill
      RecoveryPlanWorkflow drill = start(PlanOperation.TEST_FAILOVER);
      Eventually.await(() -> drill.status().state() == PlanState.AWAITING_CLEANUP);
      assertThat(stack.operatorClient(stack.secondary()).testClones()).hasSize(3);
      PlanStatus testing = drill.status();
      assertThat(testing.groups().get(0).actions()).singleElement().satisfies(a -> {
        assertThat(a.state()).isEqualTo("DONE");
        assertThat(a.site()).isEqualTo("secondary");
        assertThat(a.output()).contains("plan=shop op=TEST_FAILOVER group=db", "context-ok");
      });
      assertThat(testing.groups().get(2).actions()).singleElement()
          .satisfies(a -> assertThat(a.state()).isEqualTo("SKIPPED"));
      drill.cleanup(new CleanupRequest("drill passed"));
      PlanStatus drilled = WorkflowStub.fromTyped(drill).getResult(PlanStatus.class);
      assertThat(drilled.state()).as("%s", drilled.failures()).isEqualTo(PlanState.COMPLETED);
      assertThat(stack.operatorClient(stack.secondary()).testClones()).isEmpty();
      // the worker read the plan's earlier runs from the server: none; this one's timings are kept
      assertThat(drilled.etaFrom()).isEqualTo("no previous run");
      assertThat(drilled.timings().groupSeconds()).containsOnlyKeys(drilled.groups().stream()
          .map(g -> g.name()).toArray(String[]::new));

      // -- the real failover: the app group waits for an approval
      RecoveryPlanWorkflow failover = start(PlanOperation.PLANNED_FAILOVER);
      Eventually.await(() -> failover.status().state() == PlanState.AWAITING_APPROVAL);
      assertThat(failover.status().awaitingStep()).isEqualTo("confirm the shop answers");
      failover.approve(new Approval("something else", "tester"));
      failover.approve(new Approval("confirm the shop answers", "tester"));
      Eventually.await(() -> failover.status().state() == PlanState.AWAITING_COMMIT);
      for (String vm : VMS) {
        try (NbdClient running = new NbdClient("127.0.0.1", stack.secondary().nbdPort(),
            vm + "/disk0")) {
          assertThat(DiskCompare.firstDifference(running, stack.primary().diskImage(vm,
              "disk0"))).as(vm).isEqualTo(-1);
        }
      }
      failover.commit(new OperatorRequest("e2e"));
      PlanStatus failedOver = WorkflowStub.fromTyped(failover).getResult(PlanStatus.class);
      assertThat(failedOver.state()).as("%s", failedOver.failures())
          .isEqualTo(PlanState.COMPLETED);
      assertThat(failedOver.rtoSeconds()).isNotNull();
      assertThat(failedOver.groups()).allSatisfy(g -> assertThat(g.vms())
          .allSatisfy(v -> assertThat(v.state()).isEqualTo("COMMITTED")));
      assertThat(failedOver.groups().get(2).actions()).singleElement()
          .satisfies(a -> assertThat(a.approvedBy()).isEqualTo("tester"));
      assertThat(failedOver.steps()).anyMatch(s -> s.contains("'approve' of 'something else' "
          + "refused"));

      // -- back: reverse replication, then failback home
      RecoveryPlanWorkflow reprotect = start(PlanOperation.REPROTECT);
      PlanStatus reprotected = WorkflowStub.fromTyped(reprotect).getResult(PlanStatus.class);
      assertThat(reprotected.state()).as("%s", reprotected.failures())
          .isEqualTo(PlanState.COMPLETED);
      for (String vm : VMS) {
        ProtectVmWorkflow p = client.newWorkflowStub(ProtectVmWorkflow.class,
            ProtectVmWorkflow.workflowId(vm));
        Eventually.await(() -> p.status().state() == ProtectionState.PROTECTED
            && "secondary".equals(p.status().sourceSite()));
      }
      RecoveryPlanWorkflow failback = start(PlanOperation.FAILBACK);
      Eventually.await(() -> failback.status().state() == PlanState.AWAITING_COMMIT);
      failback.commit(new OperatorRequest("e2e"));
      PlanStatus home = WorkflowStub.fromTyped(failback).getResult(PlanStatus.class);
      assertThat(home.state()).as("%s", home.failures()).isEqualTo(PlanState.COMPLETED);
      for (String vm : VMS) {
        assertThat(primary.getVm(vm).role()).isEqualTo(VmRecord.Role.PRIMARY);
        ProtectVmWorkflow p = client.newWorkflowStub(ProtectVmWorkflow.class,
            ProtectVmWorkflow.workflowId(vm));
        Eventually.await(() -> p.status().state() == ProtectionState.PROTECTED
            && "primary".equals(p.status().sourceSite()));
        assertThat(DiskCompare.firstDifference(stack.primary().diskImage(vm, "disk0"),
            stack.secondary().diskImage(vm, "disk0"))).as(vm).isEqualTo(-1);
      }
    }
  }

  @Test
  void aFailingScriptStopsAPlannedFailoverButNotAnUnplannedOne() throws Exception {
    for (String site : List.of("primary", "secondary")) {
      Path script = Files.createDirectories(data.resolve(site + "/scripts")).resolve("check-db");
      Files.writeString(script, "#!/bin/sh\necho the database does not answer\nexit 1\n");
      Files.setPosixFilePermissions(script, PosixFilePermissions.fromString("rwxr-xr-x"));
    }
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", FAST), Map.of("shop", SHOP))) {
      client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      protectAll(stack, new Random(17));

      // PLANNED: the db group's script fails, so app and web never start; db01 awaits a decision
      RecoveryPlanWorkflow planned = start(PlanOperation.PLANNED_FAILOVER);
      Eventually.await(() -> planned.status().state() == PlanState.AWAITING_COMMIT);
      PlanStatus stoppedAt = planned.status();
      assertThat(stoppedAt.failures()).singleElement().asString()
          .contains("script check-db on secondary exited 1");
      assertThat(stoppedAt.groups().get(1).vms()).singleElement()
          .satisfies(v -> assertThat(v.state()).isEqualTo("SKIPPED"));
      assertThat(stoppedAt.groups().get(0).actions()).singleElement()
          .satisfies(a -> assertThat(a.output()).contains("the database does not answer"));
      planned.cancel(new OperatorRequest("the database is down"));
      PlanStatus cancelled = WorkflowStub.fromTyped(planned).getResult(PlanStatus.class);
      assertThat(cancelled.state()).isEqualTo(PlanState.FAILED);
      for (String vm : VMS) {
        assertThat(primary.getVm(vm).role()).as(vm).isEqualTo(VmRecord.Role.PRIMARY);
        assertThat(primary.getVm(vm).power()).as(vm).isEqualTo(VmRecord.Power.RUNNING);
      }

      // UNPLANNED: the same failure is reported, and every VM still fails over
      RecoveryPlanWorkflow unplanned = start(PlanOperation.UNPLANNED_FAILOVER);
      Eventually.await(() -> unplanned.status().state() == PlanState.AWAITING_COMMIT);
      PlanStatus carriedOn = unplanned.status();
      assertThat(carriedOn.failures()).singleElement().asString().contains("check-db");
      assertThat(carriedOn.groups()).allSatisfy(g -> assertThat(g.vms())
          .allSatisfy(v -> assertThat(v.state()).isEqualTo("AWAITING_COMMIT")));
      unplanned.cancel(new OperatorRequest("drill over"));
      assertThat(WorkflowStub.fromTyped(unplanned).getResult(PlanStatus.class).groups())
          .allSatisfy(g -> assertThat(g.vms())
              .allSatisfy(v -> assertThat(v.state()).isEqualTo("CANCELLED")));
    }
  }

  /** Creates the plan's VMs on primary, writes to them and protects them (policy fast). */
  private void protectAll(DevStack stack, Random random) throws Exception {
    AgentClient primary = stack.operatorClient(stack.primary());
    for (String vm : VMS) {
      primary.createVm(vm, List.of(8 * MIB));
      write(stack.primary().nbdPort(), vm, random);
      ProtectVmWorkflow p = stub(ProtectVmWorkflow.class, ProtectVmWorkflow.workflowId(vm));
      WorkflowClient.start(p::protect, new ProtectVmInput(vm, "fast"));
    }
    for (String vm : VMS) {
      ProtectVmWorkflow p = client.newWorkflowStub(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(vm));
      Eventually.await(() -> p.status().state() == ProtectionState.PROTECTED);
    }
  }

  private RecoveryPlanWorkflow start(PlanOperation operation) {
    RecoveryPlanWorkflow wf = stub(RecoveryPlanWorkflow.class, "plan-shop");
    WorkflowClient.start(wf::run, new RecoveryPlanInput("shop", operation, null, null));
    return client.newWorkflowStub(RecoveryPlanWorkflow.class, "plan-shop");
  }

  private <T> T stub(Class<T> type, String id) {
    return client.newWorkflowStub(type, WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE).setWorkflowId(id).build());
  }

  private static void write(int port, String vm, Random random) throws Exception {
    try (NbdClient nbd = new NbdClient("127.0.0.1", port, vm + "/disk0")) {
      byte[] block = new byte[64 * 1024];
      for (int i = 0; i < 16; i++) {
        random.nextBytes(block);
        nbd.write((long) random.nextInt(128) * block.length, block, true);
      }
    }
  }

}
