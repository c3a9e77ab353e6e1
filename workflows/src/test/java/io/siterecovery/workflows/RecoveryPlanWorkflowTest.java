package io.siterecovery.workflows;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyLong;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.ArgumentMatchers.eq;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.times;
import static org.mockito.Mockito.verify;
import static org.mockito.Mockito.when;
import static org.mockito.Mockito.withSettings;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.PointInfo;
import io.siterecovery.activities.AgentActivityRecords.PromoteOutcome;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.ScriptContext;
import io.siterecovery.activities.AgentActivityRecords.ScriptOutcome;
import io.siterecovery.activities.AgentActivityRecords.SiteStorage;
import io.siterecovery.activities.AgentActivityRecords.TestCleanup;
import io.siterecovery.activities.AgentActivityRecords.TestVm;
import io.siterecovery.activities.FailureTypes;
import io.siterecovery.activities.PlanDefinition;
import io.siterecovery.activities.PlanDefinition.Action;
import io.siterecovery.activities.PlanDefinition.Group;
import io.siterecovery.activities.PlanRunActivitiesImpl;
import io.siterecovery.activities.PolicyActivitiesImpl;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.common.SiteRecoveryDataConverter;
import io.siterecovery.workflows.failback.FailbackWorkflowImpl;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.siterecovery.workflows.failover.CommitPolicy;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.failover.FailoverWorkflowImpl;
import io.siterecovery.workflows.plan.Approval;
import io.siterecovery.workflows.plan.PlanOperation;
import io.siterecovery.workflows.plan.PlanState;
import io.siterecovery.workflows.plan.PlanStatus;
import io.siterecovery.workflows.plan.PlanStatus.ActionStatus;
import io.siterecovery.workflows.plan.PlanStatus.GroupStatus;
import io.siterecovery.workflows.plan.PlanStatus.VmStatus;
import io.siterecovery.workflows.plan.RecoveryPlanInput;
import io.siterecovery.workflows.plan.RecoveryPlanWorkflow;
import io.siterecovery.workflows.plan.RecoveryPlanWorkflowImpl;
import io.siterecovery.workflows.protection.FailoverNotice;
import io.siterecovery.workflows.protection.PolicyChange;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.replication.CopyRetrying;
import io.siterecovery.workflows.reprotect.ReprotectWorkflowImpl;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.common.WorkflowExecutionHistory;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import io.temporal.testing.WorkflowReplayer;
import io.temporal.worker.Worker;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * RecoveryPlan (plan-<plan>) over real Failover / test-failover children, with the agents mocked
 * and ProtectVm replaced by an idle stand-in that only answers Failover's notices (the plan's
 * tests are about the plan, and a thousand real ProtectVms would replicate all along).
 */
@Timeout(value = 120, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class RecoveryPlanWorkflowTest {
  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  private static final List<ProtectionPlan.DiskInfo> DISKS =
      List.of(new ProtectionPlan.DiskInfo("disk0", 1 << 30));

  /** ProtectVm as Failover needs it: running under protect-<vm>, taking its notices. */
  public static class IdleProtectVm implements ProtectVmWorkflow {
    private boolean disabled;
    private final List<FailoverNotice> notices = new ArrayList<>();

    @Override
    public ProtectionStatus protect(ProtectVmInput input) {
      Workflow.await(() -> disabled);
      return null;
    }

    @Override
    public void pause(OperatorRequest request) {}

    @Override
    public void resume(OperatorRequest request) {}

    @Override
    public void disable(OperatorRequest request) {
      disabled = true;
    }

    @Override
    public void resync(OperatorRequest request) {}

    @Override
    public void setPolicy(PolicyChange change) {}

    @Override
    public void copyProgress(CopyProgress progress) {}

    @Override
    public void copyRetrying(CopyRetrying notice) {}

    @Override
    public void failover(FailoverNotice notice) {
      notices.add(notice);
    }

    @Override
    public ProtectionStatus status() {
      return null;
    }
  }

  /** The mocked agents and what they were asked, in order. */
  private static final class Rig {
    final AgentActivities agents = mock(AgentActivities.class, withSettings().withoutAnnotations());
    /**
     * "begin <vm>" (a Failover looks for a test VM first; its second look, before the replica VM
     * starts, is not counted again), "ready <vm>", "script <name>".
     */
    final List<String> calls = Collections.synchronizedList(new ArrayList<>());
    /** VMs with a "begin" and no "ready" since. */
    final Set<String> begun = ConcurrentHashMap.newKeySet();
    final Set<String> notProtected = ConcurrentHashMap.newKeySet();
    final Set<String> liveTests = ConcurrentHashMap.newKeySet();
    final Map<String, List<PointInfo>> points = new ConcurrentHashMap<>();
    final Map<String, Integer> exitCodes = new ConcurrentHashMap<>();
    volatile List<String> siteScripts = List.of("check-db", "check-app", "smoke");
    volatile long freeBytes = 1L << 40;
  }

  private static Rig rig(TestWorkflowEnvironment env) {
    Rig r = new Rig();
    AgentActivities a = r.agents;
    when(a.describeProtection(anyString())).thenAnswer(inv -> {
      String vm = inv.getArgument(0);
      if (r.notProtected.contains(vm)) {
        throw ApplicationFailure.newNonRetryableFailure("VM " + vm + " is not replicated",
            FailureTypes.NOT_PROTECTED);
      }
      return new ProtectionPlan(vm, "primary", "secondary", DISKS);
    });
    when(a.planReprotect(anyString())).thenAnswer(inv -> {
      throw ApplicationFailure.newNonRetryableFailure(inv.getArgument(0) + " is not failed over",
          FailureTypes.NOT_FAILED_OVER);
    });
    when(a.sourceHealth(any())).thenReturn(WorkflowTestSupport.HEALTHY_SOURCE);
    when(a.findTestVm(anyString(), anyString())).thenAnswer(inv -> {
      String vm = inv.getArgument(1);
      if (r.begun.add(vm)) {
        r.calls.add("begin " + vm);
      }
      Instant now = Instant.ofEpochMilli(env.currentTimeMillis());
      return r.liveTests.contains(vm) ? new TestVm(vm, vm + "-test", 5, now, "k", now,
          List.of(vm + "-test/disk0")) : null;
    });
    when(a.replicateDelta(any())).thenAnswer(inv -> new ReplicationCycle(5, 5,
        Instant.ofEpochMilli(env.currentTimeMillis()), 1, 100, false, null, List.of(),
        WorkflowTestSupport.HEALTHY_SOURCE));
    when(a.replicaPoint(anyString(), anyString())).thenAnswer(inv -> {
      String vm = inv.getArgument(1);
      Instant now = Instant.ofEpochMilli(env.currentTimeMillis());
      List<PointInfo> p = r.points.getOrDefault(vm, List.of(
          new PointInfo(4, now.minusSeconds(60), true), new PointInfo(5, now, false)));
      PointInfo last = p.get(p.size() - 1);
      return new ReplicaPoint(last.generation(), last.time(), true, p);
    });
    org.mockito.Mockito.doAnswer(inv -> {
      r.begun.remove(inv.getArgument(1, String.class));
      r.calls.add("ready " + inv.getArgument(1));
      return null;
    }).when(a).startReplica(anyString(), anyString(), anyLong(), anyString());
    when(a.promoteReplica(any())).thenReturn(new PromoteOutcome(1));
    when(a.createTestVm(anyString(), anyString(), anyLong(), anyString())).thenAnswer(inv -> {
      String vm = inv.getArgument(1);
      r.begun.remove(vm);
      r.calls.add("ready " + vm);
      Instant now = Instant.ofEpochMilli(env.currentTimeMillis());
      return new TestVm(vm, vm + "-test", inv.getArgument(2), now, inv.getArgument(3), now,
          List.of(vm + "-test/disk0"));
    });
    when(a.deleteTestVm(anyString(), anyString())).thenAnswer(inv ->
        new TestCleanup(inv.getArgument(1) + "-test", true, List.of()));
    when(a.runPlanScript(anyString(), anyString(), any(), any())).thenAnswer(inv -> {
      String script = inv.getArgument(1);
      ScriptContext ctx = inv.getArgument(2);
      r.calls.add("script " + script + " " + ctx.group());
      return new ScriptOutcome(script, inv.getArgument(0), r.exitCodes.getOrDefault(script, 0),
          false, 10, "ran " + script);
    });
    when(a.planScripts(anyString())).thenAnswer(inv -> r.siteScripts);
    when(a.siteStorage(anyString())).thenAnswer(inv -> new SiteStorage(inv.getArgument(0),
        r.freeBytes, 1L << 41));
    return r;
  }

  private static void start(TestWorkflowEnvironment env, Rig r) {
    WorkflowTestSupport.POLICIES.clear();
    WorkflowTestSupport.POLICIES.put("default",
        WorkflowTestSupport.policy("default", Duration.ofSeconds(30)));
    Worker worker = env.newWorker(Registration.TASK_QUEUE);
    worker.registerWorkflowImplementationTypes(SiteRecoveryDataConverter.implementationOptions(),
        IdleProtectVm.class, FailoverWorkflowImpl.class, ReprotectWorkflowImpl.class,
        FailbackWorkflowImpl.class, RecoveryPlanWorkflowImpl.class);
    worker.registerActivitiesImplementations(r.agents, new PolicyActivitiesImpl(
        () -> Map.copyOf(WorkflowTestSupport.POLICIES),
        () -> Map.copyOf(WorkflowTestSupport.PLANS)),
        new PlanRunActivitiesImpl(env.getWorkflowClient()));
    env.start();
  }

  private static void protect(WorkflowClient client, List<String> vms) {
    for (String vm : vms) {
      ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
          .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
          .setWorkflowId(ProtectVmWorkflow.workflowId(vm)).build());
      WorkflowClient.start(wf::protect, new ProtectVmInput(vm, null));
    }
  }

  private static Action script(String name, String... operations) {
    return new Action(name, null, null, List.of(operations));
  }

  private static Action manual(String step, Duration timeout) {
    return new Action(null, step, timeout, List.of());
  }

  private static Group group(String name, List<String> vms, List<Action> before,
      List<Action> after) {
    return new Group(name, vms, before, after);
  }

  /** erp: db (db01, db02; after: script check-db), then app (app01). */
  private static PlanDefinition erp(int concurrency, List<Action> dbAfter) {
    return new PlanDefinition("erp", List.of(
        group("db", List.of("db01", "db02"), List.of(), dbAfter),
        group("app", List.of("app01"), List.of(), List.of())), concurrency);
  }

  private static RecoveryPlanWorkflow run(WorkflowClient client, RecoveryPlanInput input) {
    RecoveryPlanWorkflow wf = client.newWorkflowStub(RecoveryPlanWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(RecoveryPlanWorkflow.workflowId(input.plan())).build());
    WorkflowClient.start(wf::run, input);
    return wf;
  }

  private static RecoveryPlanWorkflow run(WorkflowClient client, PlanOperation op) {
    return run(client, new RecoveryPlanInput("erp", op, null, null));
  }

  private static PlanStatus result(RecoveryPlanWorkflow wf) {
    return WorkflowStub.fromTyped(wf).getResult(PlanStatus.class);
  }

  private static void awaitState(TestWorkflowEnvironment env, RecoveryPlanWorkflow wf,
      PlanState state) {
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == state);
  }

  private static VmStatus vm(PlanStatus s, String vm) {
    return s.groups().stream().flatMap(g -> g.vms().stream()).filter(v -> v.vm().equals(vm))
        .findFirst().orElseThrow();
  }

  private static GroupStatus group(PlanStatus s, String name) {
    return s.groups().stream().filter(g -> g.name().equals(name)).findFirst().orElseThrow();
  }

  private static Map<String, String> vmStates(PlanStatus s) {
    Map<String, String> m = new java.util.TreeMap<>();
    s.groups().forEach(g -> g.vms().forEach(v -> m.put(v.vm(), v.state())));
    return m;
  }

  private static boolean exists(WorkflowClient client, String id) {
    try {
      client.newUntypedWorkflowStub(id).describe();
      return true;
    } catch (io.temporal.client.WorkflowNotFoundException e) {
      return false;
    } catch (io.grpc.StatusRuntimeException e) {
      if (e.getStatus().getCode() == io.grpc.Status.Code.NOT_FOUND) {
        return false;
      }
      throw e;
    }
  }

  private static String rootMessage(Throwable t) {
    while (t.getCause() != null) {
      t = t.getCause();
    }
    return t instanceof ApplicationFailure a ? a.getOriginalMessage() : t.getMessage();
  }

  // ---------------------------------------------------------------- 1. order and parallelism

  @Test
  void groupsRunInOrderVmsInParallelAndTheNextGroupWaitsForReadinessAndAfterActions(
      TestWorkflowEnvironment env, WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(script("check-db"))));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.PLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_COMMIT);

    List<String> calls = List.copyOf(r.calls);
    int db01 = calls.indexOf("begin db01");
    int db02 = calls.indexOf("begin db02");
    int app01 = calls.indexOf("begin app01");
    int script = calls.indexOf("script check-db db");
    assertThat(List.of(db01, db02, app01, script)).doesNotContain(-1);
    assertThat(app01).isGreaterThan(script);
    assertThat(script).isGreaterThan(calls.indexOf("ready db01"))
        .isGreaterThan(calls.indexOf("ready db02"));
    // both db VMs started at once (concurrency 10): both begun before either was ready
    assertThat(Math.max(db01, db02)).isLessThan(
        Math.min(calls.indexOf("ready db01"), calls.indexOf("ready db02")));

    PlanStatus s = wf.status();
    // the plan's own view agrees: app01 started after both db VMs were ready
    Instant appStart = vm(s, "app01").startedAt();
    assertThat(vm(s, "db01").readyAt()).isBeforeOrEqualTo(appStart);
    assertThat(vm(s, "db02").readyAt()).isBeforeOrEqualTo(appStart);
    assertThat(vm(s, "db01").state()).isEqualTo("AWAITING_COMMIT");
    assertThat(vm(s, "db01").recoveryPoint()).isEqualTo("rp-5");
    assertThat(group(s, "db").actions()).singleElement()
        .satisfies(a -> assertThat(a.state()).isEqualTo("DONE"));
    List<String> steps = s.steps();
    int appStarted = indexOf(steps, "app01: failover-app01 started");
    assertThat(appStarted).isGreaterThan(indexOf(steps, "db01: AWAITING_COMMIT"))
        .isGreaterThan(indexOf(steps, "db02: AWAITING_COMMIT"))
        .isGreaterThan(indexOf(steps, "group db DONE"));

    for (String vm : List.of("db01", "db02", "app01")) {
      var d = client.newUntypedWorkflowStub(FailoverWorkflow.workflowId(vm)).describe();
      assertThat(d.getTypedSearchAttributes().get(SearchAttributeKeys.RECOVERY_PLAN))
          .as(vm).isEqualTo("erp");
      assertThat(d.getParentExecution().getWorkflowId()).isEqualTo("plan-erp");
      assertThat(vm(s, vm).workflowId()).isEqualTo("failover-" + vm);
    }
    wf.commit(new OperatorRequest("go"));
    assertThat(result(wf).state()).isEqualTo(PlanState.COMPLETED);
  }

  private static int indexOf(List<String> steps, String fragment) {
    for (int i = 0; i < steps.size(); i++) {
      if (steps.get(i).contains(fragment)) {
        return i;
      }
    }
    throw new AssertionError("no step with '" + fragment + "' in " + steps);
  }

  @Test
  void concurrencyOneStartsTheNextVmOnlyOnceTheOneBeforeIsReady(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(1, List.of()));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.PLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    assertThat(List.copyOf(r.calls)).containsExactly("begin db01", "ready db01", "begin db02",
        "ready db02", "begin app01", "ready app01");
    PlanStatus s = wf.status();
    assertThat(indexOf(s.steps(), "db02: failover-db02 started"))
        .isGreaterThan(indexOf(s.steps(), "db01: AWAITING_COMMIT"));
    wf.cancel(new OperatorRequest("drill over"));
    assertThat(result(wf).state()).isEqualTo(PlanState.COMPLETED);
  }

  // ---------------------------------------------------------------- 2. commit / cancel fan out

  @Test
  void commitGoesToEveryVmAndThePlanCompletesWithItsRto(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(script("check-db"))));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.PLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    assertThat(WorkflowTestSupport.currentDetails(client, "plan-erp"))
        .startsWith("**AWAITING_COMMIT**\n")
        .contains("- VMs ready or ended: `[####################] 100 %` 3 of 3\n")
        .contains("- Operation: PLANNED_FAILOVER\n");
    assertThat(WorkflowTestSupport.staticSummary(client, "failover-db01"))
        .isEqualTo("Planned failover of db01 (plan erp)");
    env.sleep(Duration.ofMinutes(5));
    wf.commit(new OperatorRequest("go"));
    PlanStatus end = result(wf);

    assertThat(end.state()).isEqualTo(PlanState.COMPLETED);
    assertThat(WorkflowTestSupport.currentDetails(client, "plan-erp"))
        .startsWith("**COMPLETED**\n").containsPattern("- RTO: \\d+ (s|min \\d+ s)\n");
    assertThat(end.failures()).isEmpty();
    assertThat(vmStates(end)).containsOnlyKeys("db01", "db02", "app01")
        .allSatisfy((k, v) -> assertThat(v).as(k).isEqualTo("COMMITTED"));
    assertThat(end.groups()).extracting(GroupStatus::state).containsOnly("DONE");
    assertThat(end.rtoSeconds()).isNotNull().isGreaterThanOrEqualTo(0L)
        // RTO counts until the last VM ran, not the operator's 5 minutes of thought
        .isLessThan(300L);
    assertThat(end.endedAt()).isNotNull();
    assertThat(end.steps()).anyMatch(s -> s.contains("'commit' sent to 3 VMs"));
    verify(r.agents, times(3)).promoteReplica(any());
    for (String vm : List.of("db01", "db02", "app01")) {
      assertThat(WorkflowStub.fromTyped(client.newWorkflowStub(FailoverWorkflow.class,
          FailoverWorkflow.workflowId(vm))).getResult(
              io.siterecovery.workflows.failover.FailoverStatus.class).state().name())
          .isEqualTo("COMMITTED");
    }
  }

  @Test
  void cancelGoesToEveryVm(TestWorkflowEnvironment env, WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of()));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.PLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    wf.cancel(new OperatorRequest("drill over"));
    PlanStatus end = result(wf);
    assertThat(end.state()).isEqualTo(PlanState.COMPLETED);
    assertThat(vmStates(end)).allSatisfy((k, v) -> assertThat(v).as(k).isEqualTo("CANCELLED"));
    verify(r.agents, never()).promoteReplica(any());
    verify(r.agents, times(3)).stopReplica(eq("secondary"), anyString());
    verify(r.agents).powerOn("primary", "db01");
    verify(r.agents).powerOn("primary", "db02");
    verify(r.agents).powerOn("primary", "app01");
  }

  @Test
  void aCommitPolicyDecidesForThePlanWhenNobodyDoes(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of()));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, new RecoveryPlanInput("erp",
        PlanOperation.UNPLANNED_FAILOVER, null,
        new CommitPolicy(CommitPolicy.Action.COMMIT, Duration.ofHours(1))));
    PlanStatus end = result(wf);
    assertThat(end.state()).isEqualTo(PlanState.COMPLETED);
    assertThat(vmStates(end)).allSatisfy((k, v) -> assertThat(v).isEqualTo("COMMITTED"));
    assertThat(Duration.between(end.startedAt(), end.endedAt())).isGreaterThanOrEqualTo(
        Duration.ofHours(1));
  }

  // ---------------------------------------------------------------- 3. approvals

  @Test
  void aManualStepWaitsForItsOwnApprovalAndRecordsWhoGaveIt(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(manual("confirm DB is open", null))));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.PLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_APPROVAL);
    assertThat(wf.status().awaitingStep()).isEqualTo("confirm DB is open");

    wf.approve(new Approval("confirm app is up", "mallory"));
    env.sleep(Duration.ofMinutes(1));
    PlanStatus waiting = wf.status();
    assertThat(waiting.state()).isEqualTo(PlanState.AWAITING_APPROVAL);
    assertThat(waiting.steps()).anyMatch(s -> s.contains("'approve' of 'confirm app is up' "
        + "refused: waiting for 'confirm DB is open'"));
    assertThat(r.calls).doesNotContain("begin app01");

    wf.approve(new Approval("confirm DB is open", "alice"));
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    assertThat(r.calls).contains("begin app01");
    wf.commit(new OperatorRequest("go"));
    PlanStatus end = result(wf);
    assertThat(end.state()).isEqualTo(PlanState.COMPLETED);
    ActionStatus a = group(end, "db").actions().get(0);
    assertThat(a.state()).isEqualTo("DONE");
    assertThat(a.approvedBy()).isEqualTo("alice");
    assertThat(a.label()).isEqualTo("manual \"confirm DB is open\"");
  }

  @Test
  void anApprovalNotGivenInTimeFailsThePlan(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10,
        List.of(manual("confirm DB is open", Duration.ofMinutes(30)))));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.PLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_APPROVAL);
    env.sleep(Duration.ofMinutes(31));
    // the db VMs did fail over: the plan still needs to hear what becomes of them
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    PlanStatus s = wf.status();
    assertThat(s.failures()).contains("group db: no approval of 'confirm DB is open' within "
        + "PT30M");
    assertThat(group(s, "db").actions().get(0).state()).isEqualTo("FAILED");
    assertThat(group(s, "app").state()).isEqualTo("SKIPPED");
    assertThat(vm(s, "app01").state()).isEqualTo("SKIPPED");
    assertThat(r.calls).doesNotContain("begin app01");
    wf.cancel(new OperatorRequest("roll back"));
    PlanStatus end = result(wf);
    assertThat(end.state()).isEqualTo(PlanState.FAILED);
    assertThat(vm(end, "db01").state()).isEqualTo("CANCELLED");
    assertThat(exists(client, FailoverWorkflow.workflowId("app01"))).isFalse();
  }

  // ---------------------------------------------------------------- 4. scripts

  @Test
  void aFailingScriptStopsAPlannedFailoverBeforeTheNextGroup(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    r.exitCodes.put("check-db", 3);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(script("smoke", "TEST_FAILOVER"),
        script("check-db"))));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.PLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    wf.cancel(new OperatorRequest("script failed"));
    PlanStatus end = result(wf);

    assertThat(end.state()).isEqualTo(PlanState.FAILED);
    assertThat(end.failures()).containsExactly(
        "group db: script check-db on secondary exited 3");
    List<ActionStatus> actions = group(end, "db").actions();
    assertThat(actions).extracting(ActionStatus::label, ActionStatus::state).containsExactly(
        org.assertj.core.groups.Tuple.tuple("script smoke", "SKIPPED"),
        org.assertj.core.groups.Tuple.tuple("script check-db", "FAILED"));
    assertThat(actions.get(1).exitCode()).isEqualTo(3);
    assertThat(actions.get(1).output()).isEqualTo("ran check-db");
    assertThat(group(end, "db").state()).isEqualTo("FAILED");
    assertThat(group(end, "app").state()).isEqualTo("SKIPPED");
    assertThat(vm(end, "app01").state()).isEqualTo("SKIPPED");
    assertThat(r.calls).doesNotContain("begin app01", "script smoke db");
    verify(r.agents, never()).runPlanScript(anyString(), eq("smoke"), any(), any());
    assertThat(exists(client, FailoverWorkflow.workflowId("app01"))).isFalse();
  }

  @Test
  void aFailingScriptInAnUnplannedFailoverIsReportedAndThePlanCarriesOn(
      TestWorkflowEnvironment env, WorkflowClient client) {
    Rig r = rig(env);
    r.exitCodes.put("check-db", 3);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(script("check-db"))));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.UNPLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    assertThat(r.calls).contains("begin app01");
    wf.commit(new OperatorRequest("go"));
    PlanStatus end = result(wf);
    assertThat(vmStates(end)).allSatisfy((k, v) -> assertThat(v).isEqualTo("COMMITTED"));
    assertThat(end.failures()).containsExactly(
        "group db: script check-db on secondary exited 3");
    assertThat(end.state()).isEqualTo(PlanState.FAILED);
    assertThat(group(end, "db").state()).isEqualTo("FAILED");
    assertThat(group(end, "app").state()).isEqualTo("DONE");
  }

  @Test
  void aScriptGetsThePlansContext(TestWorkflowEnvironment env, WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(script("check-db"))));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.UNPLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    org.mockito.ArgumentCaptor<ScriptContext> ctx =
        org.mockito.ArgumentCaptor.forClass(ScriptContext.class);
    verify(r.agents).runPlanScript(eq("secondary"), eq("check-db"), ctx.capture(),
        eq(Action.DEFAULT_SCRIPT_TIMEOUT));
    assertThat(ctx.getValue().plan()).isEqualTo("erp");
    assertThat(ctx.getValue().operation()).isEqualTo("UNPLANNED_FAILOVER");
    assertThat(ctx.getValue().group()).isEqualTo("db");
    assertThat(ctx.getValue().direction()).isEqualTo("primary -> secondary");
    assertThat(ctx.getValue().vms()).extracting(v -> v.vm() + "@" + v.site() + " " + v.exports())
        .containsExactly("db01@secondary [db01/disk0]", "db02@secondary [db02/disk0]");
    wf.cancel(null);
    assertThat(result(wf).state()).isEqualTo(PlanState.COMPLETED);
  }

  // ---------------------------------------------------------------- 5. a VM not protected

  @Test
  void aVmNotProtectedStopsAPlannedFailoverBeforeAnythingStarts(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    r.notProtected.add("db02");
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of()));
    start(env, r);
    protect(client, List.of("db01", "app01"));
    PlanStatus end = result(run(client, PlanOperation.PLANNED_FAILOVER));
    assertThat(end.state()).isEqualTo(PlanState.FAILED);
    assertThat(end.failures()).singleElement().asString()
        .startsWith("db02: not protected: VM db02 is not replicated");
    assertThat(vm(end, "db02").state()).isEqualTo("FAILED");
    assertThat(vm(end, "db01").state()).isEqualTo("SKIPPED");
    assertThat(vm(end, "app01").state()).isEqualTo("SKIPPED");
    assertThat(r.calls).noneMatch(c -> c.startsWith("begin"));
    assertThat(exists(client, FailoverWorkflow.workflowId("db01"))).isFalse();
  }

  @Test
  void aVmNotProtectedIsReportedAndAnUnplannedFailoverCarriesOn(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    r.notProtected.add("db02");
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(script("check-db"))));
    start(env, r);
    protect(client, List.of("db01", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.UNPLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    wf.commit(new OperatorRequest("go"));
    PlanStatus end = result(wf);
    assertThat(end.state()).isEqualTo(PlanState.FAILED);
    assertThat(vmStates(end)).containsEntry("db01", "COMMITTED").containsEntry("app01",
        "COMMITTED").containsEntry("db02", "FAILED");
    assertThat(vm(end, "db02").error()).contains("not protected");
    assertThat(end.failures()).singleElement().asString().startsWith("db02: not protected");
  }

  @Test
  void aVmNotProtectedIsReportedAndATestCarriesOn(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    r.notProtected.add("db02");
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of()));
    start(env, r);
    protect(client, List.of("db01", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.TEST_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_CLEANUP);
    wf.cleanup(new CleanupRequest("looked fine"));
    PlanStatus end = result(wf);
    assertThat(vmStates(end)).containsEntry("db01", "CLEANED_UP").containsEntry("app01",
        "CLEANED_UP").containsEntry("db02", "FAILED");
    assertThat(end.state()).isEqualTo(PlanState.FAILED);
  }

  // ---------------------------------------------------------------- 6. test failover

  @Test
  void aTestFailoverBringsEveryTestVmUpAndCleanupGoesToAll(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(script("smoke", "TEST_FAILOVER"))));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.TEST_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_CLEANUP);
    PlanStatus testing = wf.status();
    assertThat(vmStates(testing)).allSatisfy((k, v) -> assertThat(v).isEqualTo("TESTING"));
    assertThat(vm(testing, "db01").workflowId()).isEqualTo("test-failover-db01");
    assertThat(group(testing, "db").actions()).singleElement()
        .satisfies(a -> assertThat(a.state()).isEqualTo("DONE"));
    org.mockito.ArgumentCaptor<ScriptContext> ctx =
        org.mockito.ArgumentCaptor.forClass(ScriptContext.class);
    verify(r.agents).runPlanScript(eq("secondary"), eq("smoke"), ctx.capture(), any());
    assertThat(ctx.getValue().vms().get(0).exports()).containsExactly("db01-test/disk0");
    verify(r.agents, never()).startReplica(any(), any(), anyLong(), any());

    wf.cleanup(new CleanupRequest("drill ok"));
    PlanStatus end = result(wf);
    assertThat(end.state()).isEqualTo(PlanState.COMPLETED);
    assertThat(vmStates(end)).allSatisfy((k, v) -> assertThat(v).isEqualTo("CLEANED_UP"));
    verify(r.agents, times(3)).deleteTestVm(eq("secondary"), anyString());
    assertThat(exists(client, FailoverWorkflow.workflowId("db01"))).isFalse();
  }

  // ---------------------------------------------------------------- 7. LATEST_COMMON

  @Test
  void latestCommonPutsEveryVmAtItsLatestPointAtOrBeforeTheCommonInstant(
      TestWorkflowEnvironment env, WorkflowClient client) {
    Rig r = rig(env);
    Instant t = Instant.ofEpochMilli(env.currentTimeMillis());
    r.points.put("db01", List.of(new PointInfo(10, t.minusSeconds(300), false),
        new PointInfo(11, t.minusSeconds(180), false), new PointInfo(12, t.minusSeconds(60),
            false)));
    r.points.put("app01", List.of(new PointInfo(20, t.minusSeconds(600), false),
        new PointInfo(21, t.minusSeconds(240), false)));
    WorkflowTestSupport.PLANS.put("erp", new PlanDefinition("erp", List.of(
        group("db", List.of("db01"), List.of(), List.of()),
        group("app", List.of("app01"), List.of(), List.of())), 10));
    start(env, r);
    protect(client, List.of("db01", "app01"));
    RecoveryPlanWorkflow wf = run(client, new RecoveryPlanInput("erp",
        PlanOperation.UNPLANNED_FAILOVER, "LATEST_COMMON", null));
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    PlanStatus s = wf.status();
    assertThat(s.commonInstant()).isEqualTo(t.minusSeconds(240));
    assertThat(vm(s, "db01").recoveryPoint()).isEqualTo("rp-10");
    assertThat(vm(s, "app01").recoveryPoint()).isEqualTo("rp-21");
    verify(r.agents).startReplica(eq("secondary"), eq("db01"), eq(10L), anyString());
    verify(r.agents).startReplica(eq("secondary"), eq("app01"), eq(21L), anyString());
    // the children were asked for exactly these points
    for (String[] vmAndPoint : new String[][] {{"db01", "rp-10"}, {"app01", "rp-21"}}) {
      HistoryEvent started = client.fetchHistory(FailoverWorkflow.workflowId(vmAndPoint[0]))
          .getEvents().get(0);
      assertThat(started.getWorkflowExecutionStartedEventAttributes().getInput()
          .getPayloads(0).getData().toStringUtf8())
          .contains("\"recoveryPoint\":\"" + vmAndPoint[1] + "\"");
    }
    // data loss is counted from the plan's start
    assertThat(vm(s, "db01").dataLossSeconds()).isEqualTo(300L);
    wf.commit(new OperatorRequest("go"));
    assertThat(result(wf).state()).isEqualTo(PlanState.COMPLETED);
  }

  // ---------------------------------------------------------------- 8. VALIDATE

  @Test
  void validateReportsEveryProblemAtOnceAndStartsNothing(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    r.notProtected.add("db02");
    r.liveTests.add("app01");
    r.siteScripts = List.of("check-app");
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(script("check-db"))));
    start(env, r);
    PlanStatus end = result(run(client, PlanOperation.VALIDATE));
    assertThat(end.state()).isEqualTo(PlanState.FAILED);
    assertThat(end.failures()).hasSize(3);
    assertThat(end.failures().get(0)).startsWith("db02 (group db): not protected: VM db02");
    assertThat(end.failures()).contains("group db: script check-db is missing on site secondary",
        "app01: busy: a test VM of it lives on secondary");
    assertThat(end.steps()).anyMatch(s -> s.contains("3 problem(s) found"));
    verify(r.agents, never()).startReplica(any(), any(), anyLong(), any());
    verify(r.agents, never()).powerOff(any(), any());
    verify(r.agents, never()).createTestVm(any(), any(), anyLong(), any());
    verify(r.agents, never()).runPlanScript(any(), any(), any(), any());
    for (String vm : List.of("db01", "db02", "app01")) {
      assertThat(exists(client, FailoverWorkflow.workflowId(vm))).isFalse();
    }
  }

  @Test
  void aVmNoSiteKnowsIsReportedAsNotFoundNotAsUnprotected(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    org.mockito.Mockito.doThrow(ApplicationFailure.newNonRetryableFailure("VM db02 not found on "
        + "any site (primary, secondary)", "VM_NOT_FOUND")).when(r.agents)
        .describeProtection("db02");
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of()));
    start(env, r);
    PlanStatus validated = result(run(client, PlanOperation.VALIDATE));
    assertThat(validated.failures()).containsExactly(
        "db02 (group db): VM db02 not found on any site (primary, secondary)");
  }

  @Test
  void validateOfAHealthyPlanCompletes(TestWorkflowEnvironment env, WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(script("check-db"))));
    start(env, r);
    PlanStatus end = result(run(client, PlanOperation.VALIDATE));
    assertThat(end.failures()).isEmpty();
    assertThat(end.state()).isEqualTo(PlanState.COMPLETED);
  }

  @Test
  void validateReportsFreeSpaceBusyVmsStalePointsAndApprovalsNobodyCanGiveInTime(
      TestWorkflowEnvironment env, WorkflowClient client) {
    Rig r = rig(env);
    r.freeBytes = 100L << 20; // three 1 GiB VMs need 20 %: 0.6 GiB
    Instant now = Instant.ofEpochMilli(env.currentTimeMillis());
    r.points.put("app01", List.of(new PointInfo(3, now.minus(Duration.ofMinutes(10)), true)));
    WorkflowTestSupport.PLANS.put("erp", new PlanDefinition("erp", List.of(
        group("db", List.of("db01", "db02"), List.of(), List.of(manual("confirm DB", null))),
        group("app", List.of("app01"), List.of(manual("go ahead", Duration.ofDays(10))),
            List.of(manual("shop answers", Duration.ofDays(5))))), 10));
    start(env, r);
    FailoverWorkflow busy = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.testWorkflowId("db01")).build());
    WorkflowClient.start(busy::failover, new io.siterecovery.workflows.failover.FailoverInput(
        "db01", io.siterecovery.workflows.failover.FailoverType.TEST, null));
    WorkflowTestSupport.awaitVirtual(env, () -> r.calls.contains("ready db01"));
    int createdBefore = r.calls.size();

    PlanStatus end = result(run(client, new RecoveryPlanInput("erp", PlanOperation.VALIDATE,
        null, new CommitPolicy(CommitPolicy.Action.COMMIT, Duration.ofHours(1)))));
    assertThat(end.state()).isEqualTo(PlanState.FAILED);
    assertThat(end.failures()).hasSize(5).anyMatch(f -> f.matches("app01: its latest recovery "
        + "point is 6\\d\\d s old, above the RPO threshold of policy 'default' \\(120 s\\)"));
    assertThat(end.failures()).contains(
        "db01: busy: test-failover-db01 is running",
        "site secondary: 0.1 GiB free, below the 0.6 GiB that test clones and reverse tracking "
            + "of its 3 VM(s) need (20 % of their 3.0 GiB of disks)",
        "group db, after: manual \"confirm DB\" has no timeout: a failover would wait for it for "
            + "ever, and its commit policy (COMMIT after PT1H) would never apply",
        "group app, after: manual \"shop answers\": in a TEST_FAILOVER the approvals after the "
            + "first test VM started may take PT360H, not less than the maxTestDuration of "
            + "policy 'default' (PT336H): the test VMs may be gone by then");
    // a dry run: nothing started, nothing asked of the agents but questions
    assertThat(r.calls.subList(createdBefore, r.calls.size())).allMatch(c -> c.startsWith("begin"));
    verify(r.agents, times(1)).createTestVm(any(), any(), anyLong(), any());
    verify(r.agents, never()).startReplica(any(), any(), anyLong(), any());
    verify(r.agents, never()).runPlanScript(any(), any(), any(), any());
    assertThat(exists(client, FailoverWorkflow.workflowId("db02"))).isFalse();
  }

  // ---------------------------------------------------------------- 9. bad input

  @Test
  void badInputFailsAtOnceNamingTheProblem(TestWorkflowEnvironment env, WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of()));
    start(env, r);
    Map<RecoveryPlanInput, String> cases = new java.util.LinkedHashMap<>();
    cases.put(new RecoveryPlanInput("nope", PlanOperation.PLANNED_FAILOVER, null, null),
        "unknown recovery plan 'nope'");
    cases.put(new RecoveryPlanInput("erp", null, null, null), "field 'operation' is required");
    cases.put(new RecoveryPlanInput("erp", PlanOperation.REPROTECT, "LATEST", null),
        "field 'recoveryPoint' applies to the failovers only");
    cases.put(new RecoveryPlanInput("erp", PlanOperation.TEST_FAILOVER, null,
        new CommitPolicy(CommitPolicy.Action.COMMIT, Duration.ofHours(1))),
        "field 'commitPolicy' applies to PLANNED_FAILOVER");
    cases.put(new RecoveryPlanInput("erp", PlanOperation.PLANNED_FAILOVER, "rp-7", null),
        "field 'recoveryPoint': 'rp-7' is not LATEST");
    for (Map.Entry<RecoveryPlanInput, String> c : cases.entrySet()) {
      Throwable failure = catchThrowable(() -> result(run(client, c.getKey())));
      assertThat(failure).as(c.getValue()).isInstanceOf(WorkflowFailedException.class);
      assertThat(rootMessage(failure)).as(c.getKey().toString()).contains(c.getValue());
      // at once: in its first workflow task, with no activity, timer or retried task
      List<EventType> types = client.fetchHistory(RecoveryPlanWorkflow.workflowId(
          c.getKey().plan())).getEvents().stream().map(HistoryEvent::getEventType).toList();
      assertThat(types).as(c.getValue()).doesNotContain(
          EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, EventType.EVENT_TYPE_TIMER_STARTED,
          EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
          EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)
          .endsWith(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED)
          .containsOnlyOnce(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED);
    }
    assertThat(r.calls).isEmpty();
  }

  @Test
  void commitBeforeAwaitingCommitIsRefusedInAStep(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(manual("confirm DB is open", null))));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));
    RecoveryPlanWorkflow wf = run(client, PlanOperation.PLANNED_FAILOVER);
    awaitState(env, wf, PlanState.AWAITING_APPROVAL);
    wf.commit(new OperatorRequest("too early"));
    wf.cleanup(new CleanupRequest(null));
    env.sleep(Duration.ofSeconds(5));
    PlanStatus s = wf.status();
    assertThat(s.steps()).anyMatch(x -> x.contains("'commit' refused: the plan is "
        + "AWAITING_APPROVAL, not AWAITING_COMMIT"));
    assertThat(s.steps()).anyMatch(x -> x.contains("'cleanup' refused"));
    wf.approve(new Approval("confirm DB is open", "alice"));
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    // the early commit was not kept: the plan waits
    env.sleep(Duration.ofMinutes(10));
    assertThat(wf.status().state()).isEqualTo(PlanState.AWAITING_COMMIT);
    verify(r.agents, never()).promoteReplica(any());
    wf.commit(new OperatorRequest("now"));
    assertThat(result(wf).state()).isEqualTo(PlanState.COMPLETED);
  }

  // ---------------------------------------------------------------- 10. ETA

  @Test
  void aSecondRunShowsAnEtaFromTheFirst(TestWorkflowEnvironment env, WorkflowClient client) {
    Rig r = rig(env);
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(manual("confirm DB", null))));
    start(env, r);
    protect(client, List.of("db01", "db02", "app01"));

    RecoveryPlanWorkflow first = run(client, PlanOperation.TEST_FAILOVER);
    awaitState(env, first, PlanState.AWAITING_APPROVAL);
    PlanStatus none = first.status();
    assertThat(none.etaFrom()).isEqualTo("no previous run");
    assertThat(none.etaSeconds()).isNull();
    assertThat(group(none, "db").etaSeconds()).isNull();
    assertThat(vm(none, "app01").etaSeconds()).isNull();
    env.sleep(Duration.ofMinutes(10)); // the DB check takes ten minutes in this drill
    first.approve(new Approval("confirm DB", "alice"));
    awaitState(env, first, PlanState.AWAITING_CLEANUP);
    first.cleanup(new CleanupRequest(null));
    PlanStatus firstEnd = result(first);
    assertThat(firstEnd.timings().groupSeconds().get("db")).isBetween(600L, 660L);
    assertThat(firstEnd.timings().vmSeconds()).containsOnlyKeys("db01", "db02", "app01");
    String firstRun = WorkflowStub.fromTyped(first).getExecution().getRunId();

    // an UNPLANNED_FAILOVER in between: its timings are not a test's
    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of()));
    RecoveryPlanWorkflow other = run(client, new RecoveryPlanInput("erp",
        PlanOperation.UNPLANNED_FAILOVER, null, new CommitPolicy(CommitPolicy.Action.CANCEL,
            Duration.ofMinutes(1))));
    assertThat(result(other).etaFrom()).isEqualTo("no previous run");

    WorkflowTestSupport.PLANS.put("erp", erp(10, List.of(manual("confirm DB", null))));
    RecoveryPlanWorkflow second = run(client, PlanOperation.TEST_FAILOVER);
    awaitState(env, second, PlanState.AWAITING_APPROVAL);
    env.sleep(Duration.ofMinutes(4));
    PlanStatus s = second.status();
    assertThat(s.etaFrom()).startsWith("run " + firstRun);
    // as of the run's latest event, the start of the wait: a query does not move its clock
    assertThat(s.asOf()).isBefore(Instant.ofEpochMilli(env.currentTimeMillis())
        .minus(Duration.ofMinutes(3)));
    long dbEta = group(s, "db").etaSeconds();
    long dbBefore = firstEnd.timings().groupSeconds().get("db");
    assertThat(dbEta).isBetween(dbBefore - 60, dbBefore)
        .isEqualTo(dbBefore - group(s, "db").elapsedSeconds());
    assertThat(group(s, "app").etaSeconds())
        .isEqualTo(firstEnd.timings().groupSeconds().get("app"));
    assertThat(s.etaSeconds()).isEqualTo(dbEta + group(s, "app").etaSeconds());
    assertThat(vm(s, "db01").etaSeconds()).isZero(); // ready
    assertThat(vm(s, "app01").etaSeconds())
        .isEqualTo(firstEnd.timings().vmSeconds().get("app01"));
    second.approve(new Approval("confirm DB", "alice"));
    awaitState(env, second, PlanState.AWAITING_CLEANUP);
    assertThat(second.status().etaSeconds()).isZero();
    second.cleanup(new CleanupRequest(null));
    assertThat(result(second).state()).isEqualTo(PlanState.COMPLETED);
  }

  /**
   * Runs recorded with the code before versions planEta, planContinueAsNew and planValidateAll
   * (commit 282e9a5) replay on the code as it is: runs in flight at a deployment carry on as they
   * began.
   */
  @Test
  void plansRecordedBeforeTheEtaAndTheNewChecksReplay() {
    for (String recorded : List.of("plan-validate-before-planValidateAll.json",
        "plan-unplanned-committed-before-planEta.json")) {
      assertThatCode(() -> WorkflowReplayer.replayWorkflowExecutionFromResource(
          "histories/" + recorded, RecoveryPlanWorkflowImpl.class))
          .as(recorded + " replays").doesNotThrowAnyException();
    }
  }

  /**
   * A drill big enough to continue as new: the test VMs the first run started are the chain's
   * last run's to clean up, and it learns of their ends through Temporal.
   */
  @Test
  @Timeout(value = 600, unit = TimeUnit.SECONDS,
      threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  void aContinuedTestFailoverCleansUpTheTestVmsAnEarlierRunStarted(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    List<Group> groups = new ArrayList<>();
    for (int g = 0; g < 3; g++) {
      int gg = g;
      groups.add(group("g" + g, IntStream.range(0, 200)
          .mapToObj(i -> String.format("t%d-vm%03d", gg, i)).toList(), List.of(), List.of()));
    }
    WorkflowTestSupport.PLANS.put("drill", new PlanDefinition("drill", groups,
        PlanDefinition.DEFAULT_CONCURRENCY));
    start(env, r);
    RecoveryPlanWorkflow wf = run(client, new RecoveryPlanInput("drill",
        PlanOperation.TEST_FAILOVER, null, null));
    awaitState(env, wf, PlanState.AWAITING_CLEANUP);
    assertThat(wf.status().steps()).anyMatch(x -> x.contains("continuing as new before"));
    wf.cleanup(new CleanupRequest("drill over"));
    PlanStatus end = result(wf);
    assertThat(end.failures()).isEmpty();
    assertThat(end.state()).isEqualTo(PlanState.COMPLETED);
    assertThat(vmStates(end)).hasSize(600)
        .allSatisfy((k, v) -> assertThat(v).isEqualTo("CLEANED_UP"));
    verify(r.agents, times(600)).deleteTestVm(eq("secondary"), anyString());
  }

  // ---------------------------------------------------------------- 11. a thousand VMs

  @Test
  @Timeout(value = 900, unit = TimeUnit.SECONDS,
      threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
  void aThousandVmPlanCompletesWithinTemporalsHistoryLimits(TestWorkflowEnvironment env,
      WorkflowClient client) {
    Rig r = rig(env);
    List<Group> groups = new ArrayList<>();
    List<String> all = new ArrayList<>();
    for (int g = 0; g < 10; g++) {
      int gg = g;
      List<String> vms = IntStream.range(0, 100).mapToObj(i -> String.format("g%d-vm%03d", gg, i))
          .toList();
      all.addAll(vms);
      groups.add(group("g" + g, vms, List.of(),
          g == 9 ? List.of(manual("confirm the app", null)) : List.of()));
    }
    WorkflowTestSupport.PLANS.put("big", new PlanDefinition("big", groups,
        PlanDefinition.DEFAULT_CONCURRENCY));
    start(env, r);
    protect(client, all);
    RecoveryPlanWorkflow wf = run(client, new RecoveryPlanInput("big",
        PlanOperation.UNPLANNED_FAILOVER, null, null));
    // query and signals reach the run the chain has got to, which knows what the first one did
    awaitState(env, wf, PlanState.AWAITING_APPROVAL);
    PlanStatus waiting = wf.status();
    assertThat(waiting.steps()).anyMatch(x -> x.contains("continuing as new before group g"));
    assertThat(vm(waiting, "g0-vm000").state()).isEqualTo("AWAITING_COMMIT");
    assertThat(waiting.awaitingStep()).isEqualTo("confirm the app");
    wf.approve(new Approval("confirm the app", "alice"));
    awaitState(env, wf, PlanState.AWAITING_COMMIT);
    wf.commit(new OperatorRequest("go"));
    PlanStatus end = result(wf);
    assertThat(group(end, "g9").actions()).singleElement()
        .satisfies(a -> assertThat(a.approvedBy()).isEqualTo("alice"));
    assertThat(end.failures()).isEmpty();
    assertThat(end.state()).isEqualTo(PlanState.COMPLETED);
    assertThat(vmStates(end)).hasSize(1000)
        .allSatisfy((k, v) -> assertThat(v).isEqualTo("COMMITTED"));

    // every run of the chain: the plan continues as new between groups once its history is long
    List<String> runIds = new ArrayList<>();
    String runId = WorkflowStub.fromTyped(wf).getExecution().getRunId();
    while (runId != null) {
      runIds.add(runId);
      HistoryEvent last = client.fetchHistory("plan-big", runId).getLastEvent();
      runId = last.getEventType() == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
          ? last.getWorkflowExecutionContinuedAsNewEventAttributes().getNewExecutionRunId()
          : null;
    }
    long resultBytes = client.fetchHistory("plan-big", runIds.get(runIds.size() - 1))
        .getLastEvent().getWorkflowExecutionCompletedEventAttributes().getResult()
        .getSerializedSize();
    int total = 0;
    for (String id : runIds) {
      WorkflowExecutionHistory h = client.fetchHistory("plan-big", id);
      int events = h.getEvents().size();
      long bytes = h.getHistory().getSerializedSize();
      total += events;
      System.out.printf("plan-big run %s: %d events, %d bytes of history; by type: %s%n", id,
          events, bytes, h.getEvents().stream().collect(
              java.util.stream.Collectors.groupingBy(HistoryEvent::getEventType,
                  java.util.TreeMap::new, java.util.stream.Collectors.counting())));
      // Temporal refuses more than 51,200 events or 50 MB; it warns from 10,240 events / 10 MB
      assertThat(events).as("events of run " + id).isLessThan(10_240);
      assertThat(bytes).as("bytes of run " + id).isLessThan(10L << 20);
    }
    System.out.printf("plan-big: %d runs, %d events in all, result %d bytes%n", runIds.size(),
        total, resultBytes);
    assertThat(runIds).hasSizeGreaterThan(1);
    assertThat(end.steps()).anyMatch(x -> x.contains("continuing as new before group g"));
    // a payload (the result) may not exceed 2 MB
    assertThat(resultBytes).isLessThan(2L << 20);
    assertThat(WorkflowStub.fromTyped(wf).describe().getStatus())
        .isEqualTo(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED);
  }
}
