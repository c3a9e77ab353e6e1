package io.siterecovery.workers.bench;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.DevStack;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.common.OperatorRequest;
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
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.locks.LockSupport;

/**
 * A planned failover of a 100-VM recovery plan (5 groups of 20, 16 MiB disks) on dev's stack,
 * from the start of the run to every VM running at the target, with the time each group took.
 */
final class PlanBench {
  private static final int GROUPS = 5;
  private static final int PER_GROUP = 20;
  private static final long MIB = 1L << 20;

  private final Path dir;
  private final PrintStream out;

  PlanBench(Path dir, PrintStream out) {
    this.dir = dir;
    this.out = out;
  }

  List<Measured> run() throws Exception {
    List<SiteRecoveryConfig.Group> groups = new ArrayList<>();
    List<String> all = new ArrayList<>();
    for (int g = 0; g < GROUPS; g++) {
      List<String> vms = new ArrayList<>();
      for (int v = 0; v < PER_GROUP; v++) {
        vms.add(String.format("vm%d%02d", g, v));
      }
      all.addAll(vms);
      groups.add(new SiteRecoveryConfig.Group("tier" + g, vms, List.of(), List.of()));
    }
    SiteRecoveryConfig.Policy policy = new SiteRecoveryConfig.Policy(Duration.ofSeconds(30),
        Duration.ofMinutes(2), Duration.ofHours(1), null, null, null, false, null, null);
    try (DevStack stack = new DevStack(dir, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("bench", policy), Map.of("hundred",
            new SiteRecoveryConfig.Plan(groups, PER_GROUP)))) {
      WorkflowClient client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      Random random = new Random(3);
      byte[] data = new byte[(int) MIB];
      long t0 = System.nanoTime();
      for (String vm : all) {
        primary.createVm(vm, List.of(16 * MIB));
        try (NbdClient nbd = new NbdClient("127.0.0.1", stack.primary().nbdPort(),
            vm + "/disk0")) {
          random.nextBytes(data);
          nbd.write(0, data, true);
        }
        ProtectVmWorkflow p = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
            .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
            .setWorkflowId(ProtectVmWorkflow.workflowId(vm))
            .setStaticSummary(Summaries.protect(vm, "bench")).build());
        WorkflowClient.start(p::protect, new ProtectVmInput(vm, "bench"));
      }
      for (String vm : all) {
        ProtectVmWorkflow p = client.newWorkflowStub(ProtectVmWorkflow.class,
            ProtectVmWorkflow.workflowId(vm));
        while (p.status().state() != ProtectionState.PROTECTED) {
          LockSupport.parkNanos(Duration.ofMillis(200).toNanos());
        }
      }
      out.printf(Locale.ROOT, "plan: 100 VMs protected in %.1f s%n", (System.nanoTime() - t0) / 1e9);

      RecoveryPlanWorkflow plan = client.newWorkflowStub(RecoveryPlanWorkflow.class,
          WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
              .setWorkflowId(RecoveryPlanWorkflow.workflowId("hundred"))
              .setStaticSummary(Summaries.plan("hundred", PlanOperation.PLANNED_FAILOVER))
              .build());
      long start = System.nanoTime();
      WorkflowClient.start(plan::run, new RecoveryPlanInput("hundred",
          PlanOperation.PLANNED_FAILOVER, null, null));
      RecoveryPlanWorkflow running = client.newWorkflowStub(RecoveryPlanWorkflow.class,
          RecoveryPlanWorkflow.workflowId("hundred"));
      PlanStatus s = running.status();
      while (s.state() != PlanState.AWAITING_COMMIT && s.state() != PlanState.FAILED
          && s.state() != PlanState.COMPLETED) {
        LockSupport.parkNanos(Duration.ofMillis(100).toNanos());
        s = running.status();
      }
      double seconds = (System.nanoTime() - start) / 1e9;
      for (PlanStatus.GroupStatus g : s.groups()) {
        var ready = g.vms().stream().map(PlanStatus.VmStatus::readyAt)
            .filter(t -> t != null).max(java.util.Comparator.naturalOrder());
        out.printf(Locale.ROOT, "plan: group %s %s, last VM running at %s%n", g.name(), g.state(),
            ready.map(Object::toString).orElse("-"));
      }
      out.printf(Locale.ROOT, "plan: %s after %.1f s (%d failures)%n", s.state(), seconds,
          s.failures().size());
      if (s.state() == PlanState.AWAITING_COMMIT) {
        running.commit(new OperatorRequest("bench"));
        WorkflowStub.fromTyped(running).getResult(PlanStatus.class);
      }
      return List.of(new Measured("planned failover of a 100-VM plan (5 groups) to all VMs "
          + "running", String.format(Locale.ROOT, "%.1f s", seconds), "—", seconds / 60,
          "≤ 60 s", s.state() == PlanState.AWAITING_COMMIT && seconds <= 60));
    }
  }
}
