package io.siterecovery.workflows;

import static io.siterecovery.workflows.WorkflowTestSupport.PLAN;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.doThrow;
import static org.mockito.Mockito.verify;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.CopyDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.activities.ResyncWindow;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.protection.PolicyChange;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectVmWorkflowImpl;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.replication.InitialReplicationWorkflow;
import io.temporal.api.common.v1.WorkflowExecution;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import io.temporal.testing.WorkflowReplayer;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalTime;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * Issue 10 in virtual time: RPO and health while the workflow waits, the missed-cycle rule,
 * continue-as-new, short steps failing for hours, disable and pause during copies, bad policies.
 */
class ProtectVmHealthAndRetriesTest {
  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  private static final Duration HOUR_OF_CYCLES = Duration.ofMinutes(60).plusSeconds(5);

  private static ProtectVmWorkflow protect(WorkflowClient client, String policy) {
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", policy));
    return wf;
  }

  /** The ReplicationHealth search attribute, as the UI's filters see it. */
  private static String healthAttribute(WorkflowClient client) {
    return client.newUntypedWorkflowStub(ProtectVmWorkflow.workflowId("web01")).describe()
        .getTypedSearchAttributes().get(SearchAttributeKeys.REPLICATION_HEALTH);
  }

  private static WorkflowExecutionStatus statusOf(WorkflowClient client, String workflowId) {
    return client.newUntypedWorkflowStub(workflowId).describe().getStatus();
  }

  private static void sleepUntil(TestWorkflowEnvironment env, Instant at) {
    env.sleep(Duration.between(Instant.ofEpochMilli(env.currentTimeMillis()), at));
  }

  /**
   * Advances virtual time a second at a time until the condition holds, failing after {@code
   * limit}: "promptly". (One long sleep can end before the workflow has handled what came in.)
   */
  private static void within(TestWorkflowEnvironment env, Duration limit,
      java.util.function.BooleanSupplier condition) {
    for (long s = 0; s < limit.toSeconds(); s++) {
      if (condition.getAsBoolean()) {
        return;
      }
      env.sleep(Duration.ofSeconds(1));
    }
    assertThat(condition.getAsBoolean()).as("within " + limit).isTrue();
  }

  private static ApplicationFailure unreachable() {
    return ApplicationFailure.newFailure("agent unreachable", "PEER_UNREACHABLE");
  }

  @Test
  void rpoGrowsWhilePausedAndHealthTurnsWarningAtTheThreshold(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, "default");
    env.sleep(HOUR_OF_CYCLES);
    Instant point = wf.status().latestRecoveryPoint().time();
    wf.pause(new OperatorRequest("maintenance"));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PAUSED);

    sleepUntil(env, point.plus(Duration.ofMinutes(2)).minusSeconds(5));
    assertThat(healthAttribute(client)).isEqualTo("NORMAL");
    env.sleep(Duration.ofSeconds(10));
    // The workflow woke at the threshold (2 min): RPO moved on although nothing else happened.
    assertThat(healthAttribute(client)).isEqualTo("WARNING");
    ProtectionStatus paused = wf.status();
    assertThat(paused.rpoSeconds()).isGreaterThanOrEqualTo(120);
    assertThat(paused.health()).isEqualTo(Health.WARNING);
    assertThat(paused.healthReasons()).anyMatch(r -> r.contains("exceeds the policy's 120 s"));

    wf.resume(new OperatorRequest(null));
    env.sleep(Duration.ofSeconds(35));
    assertThat(wf.status().rpoSeconds()).isLessThan(30);
    assertThat(healthAttribute(client)).isEqualTo("NORMAL");
  }

  @Test
  void rpoThresholdIsNoticedDuringARetryBackOff(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, "default");
    env.sleep(HOUR_OF_CYCLES);
    Instant point = wf.status().latestRecoveryPoint().time();
    doThrow(ApplicationFailure.newFailure("peer unreachable", "PEER_UNREACHABLE"))
        .when(agents).replicateDelta(any());

    // Failures at +30 s and +1:30; the next try is at +3:30, 2 min later.
    sleepUntil(env, point.plus(Duration.ofMinutes(2)).plusSeconds(5));
    ProtectionStatus backingOff = wf.status();
    assertThat(backingOff.healthReasons()).anyMatch(r -> r.contains("retrying in 2 min"))
        .anyMatch(r -> r.contains("exceeds the policy's 120 s"));
    assertThat(backingOff.rpoSeconds()).isGreaterThanOrEqualTo(120);
    assertThat(healthAttribute(client)).isEqualTo("WARNING");
  }

  @Test
  void rpoThresholdIsNoticedWhileCritical(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, "default");
    env.sleep(HOUR_OF_CYCLES);
    Instant point = wf.status().latestRecoveryPoint().time();
    doThrow(ApplicationFailure.newNonRetryableFailure("replica in an invalid state",
        "INVALID_STATE")).when(agents).replicateDelta(any());

    sleepUntil(env, point.plus(Duration.ofMinutes(2)).plusSeconds(5));
    ProtectionStatus critical = wf.status();
    // CRITICAL is worse than WARNING and stays; the RPO reason is added on time.
    assertThat(critical.health()).isEqualTo(Health.CRITICAL);
    assertThat(critical.healthReasons()).anyMatch(r -> r.contains("INVALID_STATE"))
        .anyMatch(r -> r.contains("exceeds the policy's 120 s"));
    assertThat(healthAttribute(client)).isEqualTo("CRITICAL");
  }

  @Test
  void moreThanAFifthOfTheLastHoursCyclesMissedIsWarning(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    PolicySettings p = WorkflowTestSupport.policy("lenient", Duration.ofSeconds(30));
    // An RPO threshold of a day: only the missed-cycle rule can warn.
    WorkflowTestSupport.POLICIES.put("lenient", new PolicySettings(p.name(), p.copyFrequency(),
        Duration.ofDays(1), p.retention(), null, null, p.resyncWindow(), false, null,
        p.maxTestDuration()));
    ProtectVmWorkflow wf = protect(client, "lenient");
    env.sleep(HOUR_OF_CYCLES);
    Instant lastCycle = wf.status().lastCycleAt();
    wf.pause(new OperatorRequest(null));

    // 120 cycles are due an hour; the 24th skipped one (its period over at +12:30) is one too many.
    sleepUntil(env, lastCycle.plus(Duration.ofMinutes(12)));
    assertThat(healthAttribute(client)).isEqualTo("NORMAL");
    sleepUntil(env, lastCycle.plus(Duration.ofMinutes(12).plusSeconds(35)));
    assertThat(healthAttribute(client)).isEqualTo("WARNING");
    assertThat(wf.status().healthReasons())
        .anyMatch(r -> r.matches("24 of the 1[12]\\d cycles due in the last hour were missed.*"));
  }

  @Test
  void signalsAtTheContinueAsNewBoundaryAreActedOnAndStateSurvives(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    WorkflowTestSupport.POLICIES.put("hourly", WorkflowTestSupport.policy("hourly",
        Duration.ofHours(1)));
    ProtectVmWorkflow signaller = client.newWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId("web01"));
    AtomicInteger calls = new AtomicInteger();
    doAnswer(inv -> {
      int n = calls.incrementAndGet();
      if (n == 1) {
        throw unreachable();
      }
      if (n == 200) {
        // The 200th cycle ends the run; these arrive while it runs, in the run's last task.
        signaller.setPolicy(new PolicyChange("hourly"));
        signaller.pause(new OperatorRequest("at the boundary"));
      }
      return WorkflowTestSupport.cycle(env, n + 1);
    }).when(agents).replicateDelta(any());
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowExecution first = WorkflowClient.start(wf::protect, new ProtectVmInput("web01", null));

    env.sleep(Duration.ofSeconds(30 * 199));
    WorkflowTestSupport.awaitVirtual(env, () -> calls.get() >= 200);
    env.sleep(Duration.ofMinutes(5));
    assertThat(wf.status().state()).isEqualTo(ProtectionState.PAUSED);
    assertThat(calls.get()).isEqualTo(200);
    assertThat(client.newUntypedWorkflowStub(first.getWorkflowId()).describe().getExecution()
        .getRunId()).isEqualTo(first.getRunId());

    wf.resume(new OperatorRequest(null));
    WorkflowTestSupport.awaitVirtual(env, () -> !client.newUntypedWorkflowStub(
        first.getWorkflowId()).describe().getExecution().getRunId().equals(first.getRunId())
        && wf.status().state() == ProtectionState.PROTECTED);
    ProtectionStatus next = wf.status();
    assertThat(next.policy()).isEqualTo("hourly");
    assertThat(next.state()).isEqualTo(ProtectionState.PROTECTED);
    assertThat(next.deltaCycles()).isEqualTo(200);
    assertThat(next.failedCycles()).isEqualTo(1);
    assertThat(next.notes()).anyMatch(n -> n.contains("policy changed from default to hourly"));
    env.sleep(Duration.ofMinutes(30));
    assertThat(calls.get()).isEqualTo(201);
    assertReplays(client, first);

    // An edit makes the policy invalid: the runs keep its last settings, across the next
    // continue-as-new too (200 hourly cycles later).
    String second = client.newUntypedWorkflowStub(first.getWorkflowId()).describe()
        .getExecution().getRunId();
    WorkflowTestSupport.POLICIES.put("hourly", onMars("hourly"));
    env.sleep(Duration.ofHours(201));
    assertThat(client.newUntypedWorkflowStub(first.getWorkflowId()).describe().getExecution()
        .getRunId()).isNotIn(first.getRunId(), second);
    assertThat(statusOf(client, first.getWorkflowId()))
        .isEqualTo(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING);
    assertThat(wf.status().state()).isEqualTo(ProtectionState.PROTECTED);
    assertThat(wf.status().policy()).isEqualTo("hourly");
    assertThat(wf.status().notes()).anyMatch(n -> n.contains("keeping its previous settings"));
  }

  /** The new code's own histories replay too (a run and the run it continued as). */
  private static void assertReplays(WorkflowClient client, WorkflowExecution run) {
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecution(
        client.fetchHistory(run.getWorkflowId(), run.getRunId()), ProtectVmWorkflowImpl.class))
        .doesNotThrowAnyException();
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecution(
        client.fetchHistory(run.getWorkflowId()), ProtectVmWorkflowImpl.class))
        .doesNotThrowAnyException();
  }

  @Test
  void enableFailingForThreeHoursIsRetriedWithWarningUntilItWorks(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    long started = env.currentTimeMillis();
    doAnswer(inv -> {
      if (env.currentTimeMillis() - started < Duration.ofHours(3).toMillis()) {
        throw unreachable();
      }
      return true;
    }).when(agents).enableReplication(any());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, "default");

    env.sleep(Duration.ofHours(1));
    ProtectionStatus failing = wf.status();
    assertThat(failing.state()).isEqualTo(ProtectionState.ENABLING);
    assertThat(failing.health()).isEqualTo(Health.WARNING);
    assertThat(failing.healthReasons()).anyMatch(r -> r.startsWith(
        "enabling replication still failing after its retries (agent unreachable)"));
    assertThat(healthAttribute(client)).isEqualTo("WARNING");

    env.sleep(Duration.ofHours(2).plusMinutes(35));
    ProtectionStatus working = wf.status();
    assertThat(working.state()).isEqualTo(ProtectionState.PROTECTED);
    assertThat(working.deltaCycles()).isPositive();
    assertThat(healthAttribute(client)).isEqualTo("NORMAL");
    wf.disable(new OperatorRequest(null));
    assertThat(WorkflowStub.fromTyped(wf).getResult(ProtectionStatus.class).state())
        .isEqualTo(ProtectionState.DISABLED);
  }

  @Test
  void disableWhileEnableKeepsFailingEndsProtectionPromptly(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    doThrow(unreachable()).when(agents).enableReplication(any());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, "default");
    env.sleep(Duration.ofMinutes(10));

    // While the activity's own retries (1-10 minutes apart) run.
    wf.disable(new OperatorRequest(null));
    within(env, Duration.ofMinutes(1), () -> statusOf(client, ProtectVmWorkflow.workflowId(
        "web01")) == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED);
    assertThat(WorkflowStub.fromTyped(wf).getResult(ProtectionStatus.class).state())
        .isEqualTo(ProtectionState.DISABLED);
    verify(agents).disableReplication(PLAN);
  }

  @Test
  void finalizeFailingForThreeHoursIsRetriedUntilItWorks(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    WorkflowTestSupport.start(env, agents);
    long started = env.currentTimeMillis();
    ReplicationCycle finalized = WorkflowTestSupport.cycle(env, 2);
    doAnswer(inv -> {
      if (env.currentTimeMillis() - started < Duration.ofHours(3).toMillis()) {
        throw unreachable();
      }
      return finalized;
    }).when(agents).replicateDelta(any());
    ProtectVmWorkflow wf = protect(client, "default");

    env.sleep(Duration.ofHours(1));
    assertThat(wf.status().healthReasons()).anyMatch(r -> r.startsWith(
        "finalizing the initial copy still failing after its retries"));
    env.sleep(Duration.ofHours(2).plusMinutes(35));
    assertThat(wf.status().state()).isEqualTo(ProtectionState.PROTECTED);
    verify(agents).completeInitialReplication(PLAN);
  }

  @Test
  void aCopyStillFailingAfterItsRetriesShowsWarning(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    long started = env.currentTimeMillis();
    doAnswer(inv -> {
      if (env.currentTimeMillis() - started < Duration.ofMinutes(70).toMillis()) {
        throw unreachable();
      }
      return new DiskCopyResult("disk", 1, 1, 0, 1);
    }).when(agents).copyDisk(any());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, "default");

    // the copy's own retries (AgentSteps.diskCopy) take about 31 minutes
    env.sleep(Duration.ofMinutes(35));
    assertThat(wf.status().healthReasons()).anyMatch(r -> r.startsWith(
        "initial copy of disk0 still failing after its retries (agent unreachable)"));
    assertThat(healthAttribute(client)).isEqualTo("WARNING");
    env.sleep(Duration.ofMinutes(40));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    assertThat(wf.status().health()).isEqualTo(Health.NORMAL);
    assertThat(healthAttribute(client)).isEqualTo("NORMAL");
  }

  @Test
  void disableDuringACopyThatKeepsFailingEndsProtectionPromptly(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    doThrow(unreachable()).when(agents).copyDisk(any());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, "default");
    env.sleep(Duration.ofMinutes(40));
    assertThat(wf.status().state()).isEqualTo(ProtectionState.INITIAL_REPLICATION);

    wf.disable(new OperatorRequest("wrong VM"));
    within(env, Duration.ofMinutes(1), () -> statusOf(client, ProtectVmWorkflow.workflowId(
        "web01")) == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED);
    assertThat(WorkflowStub.fromTyped(wf).getResult(ProtectionStatus.class).state())
        .isEqualTo(ProtectionState.DISABLED);
    assertThat(statusOf(client, InitialReplicationWorkflow.workflowId("web01")))
        .isEqualTo(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_CANCELED);
    verify(agents).disableReplication(PLAN);
    assertReplays(client, WorkflowStub.fromTyped(wf).getExecution());
  }

  @Test
  void pauseStopsTheInitialCopyAndResumeGoesOnFromItsProgress(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    ProtectVmWorkflow signaller = client.newWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId("web01"));
    long started = env.currentTimeMillis();
    List<CopyDiskRequest> requests = new CopyOnWriteArrayList<>();
    doAnswer(inv -> {
      CopyDiskRequest req = inv.getArgument(0, CopyDiskRequest.class);
      requests.add(req);
      if (env.currentTimeMillis() - started < Duration.ofMinutes(40).toMillis()) {
        // Half of disk0 got across before the target became unreachable.
        signaller.copyProgress(new CopyProgress("INITIAL_REPLICATION", req.disk(),
            req.sizeBytes() / 2, req.sizeBytes(), req.sizeBytes() / 2, 1e6, Instant.now()));
        throw unreachable();
      }
      return new DiskCopyResult(req.disk(), 1, 1, 0, 1);
    }).when(agents).copyDisk(any());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, "default");
    env.sleep(Duration.ofMinutes(10));

    wf.pause(new OperatorRequest(null));
    within(env, Duration.ofMinutes(1), () -> wf.status().state() == ProtectionState.PAUSED);
    int attempts = requests.size();
    env.sleep(Duration.ofHours(1));
    assertThat(requests).hasSize(attempts);

    wf.resume(new OperatorRequest(null));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    assertThat(requests).hasSize(attempts + 2);
    assertThat(requests.get(attempts).disk()).isEqualTo("disk0");
    assertThat(requests.get(attempts).startOffset()).isEqualTo(PLAN.disks().get(0).sizeBytes() / 2);
    assertThat(requests.get(attempts + 1).startOffset()).isNull();
  }

  @Test
  void disableDuringAResyncThatKeepsFailingEndsProtectionPromptly(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    doThrow(unreachable()).when(agents).resyncDisk(any());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, "default");
    env.sleep(Duration.ofSeconds(65));
    wf.resync(new OperatorRequest(null));
    env.sleep(Duration.ofMinutes(20));
    assertThat(wf.status().state()).isEqualTo(ProtectionState.RESYNCING);

    wf.disable(new OperatorRequest(null));
    within(env, Duration.ofMinutes(1), () -> statusOf(client, ProtectVmWorkflow.workflowId(
        "web01")) == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED);
    verify(agents).disableReplication(PLAN);
  }

  private static PolicySettings onMars(String name) {
    PolicySettings p = WorkflowTestSupport.policy(name, Duration.ofSeconds(30));
    return new PolicySettings(name, p.copyFrequency(), p.rpoThreshold(), p.retention(), null, null,
        new ResyncWindow(LocalTime.of(22, 0), LocalTime.of(6, 0), "Mars/Olympus"), false, null,
        p.maxTestDuration());
  }

  @Test
  void aPolicyWithABadTimeZoneFailsAtStartAndIsRefusedWhenEditedIn(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    WorkflowTestSupport.POLICIES.put("mars", onMars("mars"));
    assertThat(ProtectVmWorkflowTest.failureOf(client, "ProtectVm",
        Map.of("vm", "web01", "policy", "mars")))
        .contains("policy 'mars': \"resyncWindow.timeZone\" 'Mars/Olympus' is not a time zone");

    ProtectVmWorkflow wf = protect(client, "default");
    env.sleep(Duration.ofSeconds(35));
    WorkflowTestSupport.POLICIES.put("default", onMars("default"));
    doAnswer(inv -> new ReplicationCycle(9, 9, Instant.ofEpochMilli(env.currentTimeMillis()), 1,
        1, false, null, null, new SourceHealth(0, 3L << 30, "the change bitmap was lost")))
        .when(agents).replicateDelta(any());
    // The edited policy is refused; its previous settings (UTC window) place the resync, and
    // the workflow goes on (before, the time zone threw in workflow code, task after task).
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().notes().stream()
        .anyMatch(n -> n.contains("resync needed (the change bitmap was lost); pending until")));
    assertThat(wf.status().notes()).anyMatch(n -> n.contains(
        "policy 'default' could not be read (policy 'default': \"resyncWindow.timeZone\" "
        + "'Mars/Olympus' is not a time zone"));
    assertThat(statusOf(client, ProtectVmWorkflow.workflowId("web01")))
        .isEqualTo(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING);
  }
}
