package io.siterecovery.workflows;

import static io.siterecovery.workflows.WorkflowTestSupport.PLAN;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyLong;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.ArgumentMatchers.eq;
import static org.mockito.ArgumentMatchers.matches;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.doReturn;
import static org.mockito.Mockito.inOrder;
import static org.mockito.Mockito.mockingDetails;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.times;
import static org.mockito.Mockito.verify;
import static org.mockito.Mockito.when;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failover.ChangeRecoveryPoint;
import io.siterecovery.workflows.failover.CommitPolicy;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.failover.FailoverWorkflowImpl;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.protection.RecoveryPoint;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import io.temporal.testing.WorkflowReplayer;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.mockito.InOrder;

/**
 * PLANNED and UNPLANNED failovers as runs started now take them (version replicaOnLayers): the
 * replica VM runs on layers (startReplica / stopReplica / promoteReplica), the source is fenced
 * (or the fence is owed), and a cancel needs no resync. Runs recorded before that version replay
 * from test resources.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FailoverWorkflowTest {
  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  /** Any of the idempotency keys of one run: a UUID, then the number of the start. */
  private static String key(int start) {
    return "^[0-9a-f-]{36}-" + start + "$";
  }

  private static ProtectVmWorkflow protect(TestWorkflowEnvironment env, WorkflowClient client) {
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", null));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    return wf;
  }

  private static FailoverWorkflow start(WorkflowClient client, FailoverInput input) {
    FailoverWorkflow wf = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::failover, input);
    return wf;
  }

  private static FailoverWorkflow awaitingCommit(TestWorkflowEnvironment env,
      WorkflowClient client, FailoverInput input) {
    FailoverWorkflow wf = start(client, input);
    WorkflowTestSupport.awaitVirtual(env,
        () -> wf.status().state() == FailoverState.AWAITING_COMMIT);
    return wf;
  }

  private static FailoverWorkflow planned(TestWorkflowEnvironment env, WorkflowClient client) {
    return awaitingCommit(env, client, new FailoverInput("web01", FailoverType.PLANNED, "LATEST"));
  }

  private static FailoverStatus result(FailoverWorkflow wf) {
    return WorkflowStub.fromTyped(wf).getResult(FailoverStatus.class);
  }

  private static boolean running(FailoverWorkflow wf) {
    return WorkflowStub.fromTyped(wf).describe().getStatus()
        == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING;
  }

  private static List<String> ids(List<RecoveryPoint> points) {
    return points.stream().map(RecoveryPoint::id).toList();
  }

  /** When a step happened: each step line starts with the workflow's time. */
  private static Instant timeOf(String step) {
    return Instant.parse(step.substring(0, step.indexOf(' ')));
  }

  /** The run as recorded replays on the code as it is. */
  private static void replays(WorkflowClient client, String workflowId) {
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecution(
        client.fetchHistory(workflowId), FailoverWorkflowImpl.class))
        .as(workflowId + " replays").doesNotThrowAnyException();
  }

  /** The failover notices ProtectVm received, as "STAGE resync=..." in order. */
  private static List<String> noticesTo(WorkflowClient client) {
    return client.streamHistory(ProtectVmWorkflow.workflowId("web01"))
        .filter(HistoryEvent::hasWorkflowExecutionSignaledEventAttributes)
        .map(HistoryEvent::getWorkflowExecutionSignaledEventAttributes)
        .filter(a -> a.getSignalName().equals("failover"))
        .map(a -> a.getInput().getPayloads(0).getData().toStringUtf8())
        .map(json -> json.replaceAll(".*\"stage\":\"([A-Z]+)\".*\"resyncRequired\":(true|false).*",
            "$1 resync=$2"))
        .toList();
  }

  /** A default policy that makes every second cycle app-consistent (rp-2, rp-4, ...). */
  private static void appConsistentEveryMinute() {
    WorkflowTestSupport.POLICIES.put("default", new PolicySettings("default",
        Duration.ofSeconds(30), Duration.ofMinutes(2), Duration.ofHours(24),
        Duration.ofMinutes(1), null, WorkflowTestSupport.NIGHTS, false, null, null));
  }

  private static ApplicationFailure unreachable() {
    return ApplicationFailure.newFailure("primary: connect timed out", "PEER_UNREACHABLE");
  }

  @Test
  void plannedFailoverShutsDownSynchronisesFencesStartsTheReplicaAndPromotesIt(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow fo = planned(env, client);

    FailoverStatus waiting = fo.status();
    assertThat(protection.status().state()).isEqualTo(ProtectionState.FAILED_OVER);
    assertThat(waiting.fence()).startsWith("fenced on primary");
    // the final delta applied rp-2: the replica VM starts exactly there
    assertThat(waiting.recoveryPoint().id()).isEqualTo("rp-2");
    assertThat(ids(waiting.pointsTried())).containsExactly("rp-2");
    verify(agents).startReplica(eq("secondary"), eq("web01"), eq(2L), matches(key(1)));
    verify(agents, never()).promoteReplica(any());
    assertThat(WorkflowTestSupport.currentDetails(client, "failover-web01"))
        .startsWith("**AWAITING_COMMIT**\n")
        .contains("- Failover: PLANNED, primary → secondary\n")
        .containsPattern("- Recovery point: rp-2 at \\S+, crash-consistent\n")
        .contains("- Source: fenced on primary");

    fo.commit(new OperatorRequest("go"));
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(WorkflowTestSupport.currentDetails(client, "failover-web01"))
        .startsWith("**COMMITTED**\n").contains("- Last: ").contains("committed: web01");
    assertThat(end.steps()).anyMatch(s -> s.contains("committed: web01 is the primary on "
        + "secondary") && s.contains("3145728 bytes changed since rp-2"));
    InOrder order = inOrder(agents);
    order.verify(agents).powerOff("primary", "web01");
    order.verify(agents).replicateDelta(any());
    order.verify(agents).fenceVm("primary", "web01");
    order.verify(agents).startReplica(eq("secondary"), eq("web01"), eq(2L), anyString());
    order.verify(agents).promoteReplica(PLAN);
    // nothing of the old path: the replica's disks are neither rolled back nor powered on
    verify(agents, never()).powerOn(any(), any());
    verify(agents, never()).rollbackReplica(any(), any(), anyLong());
    verify(agents, never()).commitFailover(any());
    verify(agents, never()).stopReplica(any(), any());
    verify(agents, never()).unfenceVm(any(), any());
    ProtectionStatus protectionEnd =
        WorkflowStub.fromTyped(protection).getResult(ProtectionStatus.class);
    assertThat(protectionEnd.state()).isEqualTo(ProtectionState.FAILED_OVER);
    assertThat(noticesTo(client)).containsExactly("STARTED resync=false",
        "COMMITTED resync=false");
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  /**
   * A commit that waits for a replica's disks (one recovered from a bucket) shows the download in
   * its status while it is COMMITTING, from the activity's copyProgress signals; not after.
   */
  @Test
  void aCommitWaitingForItsDisksShowsTheirDownloadInItsStatus(TestWorkflowEnvironment env,
      WorkflowClient client) throws Exception {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    java.util.concurrent.CountDownLatch seen = new java.util.concurrent.CountDownLatch(1);
    doAnswer(inv -> {
      client.newWorkflowStub(FailoverWorkflow.class, FailoverWorkflow.workflowId("web01"))
          .copyProgress(new io.siterecovery.activities.AgentActivityRecords.CopyProgress(
              "DOWNLOADING_DISKS", "all disks", 3L << 30, 4L << 30, 3L << 30, 100.0 * (1 << 20),
              Instant.now()));
      assertThat(seen.await(30, TimeUnit.SECONDS)).as("the test saw the progress").isTrue();
      return new io.siterecovery.activities.AgentActivityRecords.PromoteOutcome(0);
    }).when(agents).promoteReplica(any());
    WorkflowTestSupport.start(env, agents);
    protect(env, client);
    FailoverWorkflow fo = planned(env, client);
    assertThat(fo.status().progress()).as("before the commit").isNull();

    fo.commit(new OperatorRequest(null));
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
    while (fo.status().progress() == null) {
      assertThat(System.nanoTime()).as("progress while committing").isLessThan(deadline);
      Thread.onSpinWait();
    }
    FailoverStatus committing = fo.status();
    assertThat(committing.state()).isEqualTo(FailoverState.COMMITTING);
    assertThat(committing.progress().bytesDone()).isEqualTo(3L << 30);
    assertThat(committing.progress().bytesTotal()).isEqualTo(4L << 30);
    assertThat(committing.progress().etaSeconds()).as("1 GiB left at 100 MiB/s").isEqualTo(11L);
    seen.countDown();
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.progress()).as("once committed").isNull();
  }

  @Test
  void aCommitWhoseProtectionIsGoneStillCommitsAndSaysTheProtectionWasNotTold(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow fo = planned(env, client);
    WorkflowStub.fromTyped(protection).terminate("gone by hand");

    fo.commit(new OperatorRequest(null));
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.steps()).anyMatch(s -> s.contains("protect-web01 could not be told that the "
        + "failover was committed"));
    verify(agents).promoteReplica(PLAN);
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  @Test
  void cancelStopsTheReplicaUnfencesAndRestartsTheSourceAndProtectionResumesWithoutResync(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow fo = planned(env, client);

    fo.cancel(new OperatorRequest("drill over"));
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.CANCELLED);
    assertThat(end.fence()).startsWith("lifted");
    assertThat(end.steps()).anyMatch(s -> s.contains("cancelled: web01 runs on primary again")
        && s.contains("without a resync"));
    InOrder order = inOrder(agents);
    order.verify(agents).stopReplica("secondary", "web01");
    order.verify(agents).unfenceVm("primary", "web01");
    order.verify(agents).powerOn("primary", "web01");
    verify(agents, never()).powerOff("secondary", "web01");
    verify(agents, never()).promoteReplica(any());
    verify(agents, never()).commitFailover(any());

    // The replica's disks were never written: protection resumes with no resync at all.
    WorkflowTestSupport.awaitVirtual(env,
        () -> protection.status().state() == ProtectionState.PROTECTED);
    assertThat(noticesTo(client)).containsExactly("STARTED resync=false",
        "CANCELLED resync=false");
    long cycles = protection.status().deltaCycles();
    env.sleep(Duration.ofSeconds(61));
    ProtectionStatus later = protection.status();
    assertThat(later.state()).isEqualTo(ProtectionState.PROTECTED);
    assertThat(later.resyncReason()).isNull();
    assertThat(later.deltaCycles()).isGreaterThan(cycles);
    verify(agents, never()).beginResync(any());
    verify(agents, never()).resyncDisk(any());
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  @Test
  void replicaBehindTheSourceFailsBeforeTheFenceAndRestartsTheSource(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    doReturn(new ReplicationCycle(7, 6, Instant.now(), 1, 1, false, null, List.of(),
        WorkflowTestSupport.HEALTHY_SOURCE)).when(agents).replicateDelta(any());

    FailoverWorkflow fo = start(client, new FailoverInput("web01", FailoverType.PLANNED, null));
    assertThat(catchThrowable(() -> result(fo))).rootCause()
        .hasMessageContaining("replica applied generation 6 but the source sealed 7");
    assertThat(fo.status().state()).isEqualTo(FailoverState.FAILED);
    verify(agents).powerOn("primary", "web01");
    verify(agents, never()).fenceVm(any(), any());
    verify(agents, never()).unfenceVm(any(), any());
    verify(agents, never()).startReplica(any(), any(), anyLong(), any());
    verify(agents, never()).stopReplica(any(), any());
    WorkflowTestSupport.awaitVirtual(env,
        () -> protection.status().state() == ProtectionState.PROTECTED);
    assertThat(protection.status().resyncReason()).isNull();
  }

  @Test
  void unplannedFailoverWithTheSourceAnsweringFencesItAndStartsTheLatestAppConsistentPoint(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    appConsistentEveryMinute();
    ProtectVmWorkflow protection = protect(env, client);
    env.sleep(Duration.ofSeconds(125));
    assertThat(protection.status().recoveryPoints())
        .extracting(p -> p.id() + ":" + p.appConsistent())
        .containsExactly("rp-1:false", "rp-2:true", "rp-3:false", "rp-4:true", "rp-5:false");

    FailoverWorkflow fo = awaitingCommit(env, client,
        new FailoverInput("web01", FailoverType.UNPLANNED, "LATEST_APP_CONSISTENT"));
    FailoverStatus waiting = fo.status();
    assertThat(waiting.recoveryPoint().id()).isEqualTo("rp-4");
    assertThat(waiting.recoveryPoint().appConsistent()).isTrue();
    assertThat(waiting.fence()).startsWith("fenced on primary");
    assertThat(waiting.steps()).anyMatch(s -> s.contains("the replica's disks stay at rp-5 "
        + "until a commit"));
    verify(agents).fenceVm("primary", "web01");
    verify(agents).startReplica(eq("secondary"), eq("web01"), eq(4L), matches(key(1)));
    verify(agents, never()).rollbackReplica(any(), any(), anyLong());
    verify(agents, never()).powerOff(eq("primary"), any());
    // not LATEST: no attempt to ship from the lost source (4 cycles of ProtectVm only)
    verify(agents, times(4)).replicateDelta(any());

    fo.commit(new OperatorRequest(null));
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.fence()).startsWith("fenced on primary");
    InOrder order = inOrder(agents);
    order.verify(agents).fenceVm("primary", "web01");
    order.verify(agents).startReplica(eq("secondary"), eq("web01"), eq(4L), anyString());
    order.verify(agents).promoteReplica(PLAN);
    verify(agents, never()).commitFailover(any());
    verify(agents, times(1)).fenceVm(any(), any());
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  @Test
  void unplannedFailoverWithTheSourceGoneOwesTheFenceCommitsAndEndsOnlyOnceItIsApplied(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    AtomicBoolean primaryBack = new AtomicBoolean();
    AtomicInteger fenceAttempts = new AtomicInteger();
    doAnswer(inv -> {
      fenceAttempts.incrementAndGet();
      if (!primaryBack.get()) {
        throw unreachable();
      }
      return null;
    }).when(agents).fenceVm("primary", "web01");
    doAnswer(inv -> {
      throw unreachable();
    }).when(agents).replicateDelta(any());

    FailoverWorkflow fo = awaitingCommit(env, client,
        new FailoverInput("web01", FailoverType.UNPLANNED, "LATEST"));
    FailoverStatus waiting = fo.status();
    assertThat(waiting.fence()).startsWith("owed: primary did not answer")
        .contains("connect timed out").contains("retried every minute");
    assertThat(waiting.steps()).anyMatch(s -> s.contains("the source did not answer"));
    assertThat(waiting.recoveryPoint().id()).isEqualTo("rp-1");
    verify(agents).startReplica(eq("secondary"), eq("web01"), eq(1L), matches(key(1)));

    // the commit goes ahead without the fence ...
    fo.commit(new OperatorRequest(null));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().state() == FailoverState.COMMITTED);
    verify(agents).promoteReplica(PLAN);
    int before = fenceAttempts.get();
    env.sleep(Duration.ofMinutes(10));
    // ... but the workflow does not end while the fence is owed: retried once a minute
    assertThat(running(fo)).isTrue();
    FailoverStatus committed = fo.status();
    assertThat(committed.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(committed.fence()).startsWith("owed: ");
    assertThat(committed.steps()).anyMatch(s -> s.contains("waiting for primary to answer"));
    assertThat(fenceAttempts.get() - before).isBetween(8, 12);
    assertThat(protection.status().state()).isEqualTo(ProtectionState.FAILED_OVER);

    primaryBack.set(true);
    Instant answeredAt = Instant.ofEpochMilli(env.currentTimeMillis());
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.fence()).startsWith("fenced on primary");
    // the last thing it did, within the minute after primary answered again
    String last = end.steps().get(end.steps().size() - 1);
    assertThat(last).contains("source VM fenced on primary");
    assertThat(timeOf(last)).isBetween(answeredAt, answeredAt.plus(Duration.ofMinutes(1)));
    verify(agents, never()).unfenceVm(any(), any());
    verify(agents, never()).powerOn(any(), any());
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  @Test
  void cancellingWhileTheFenceIsOwedCancelsTheFenceAndLeavesTheSourceAlone(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    AtomicInteger fenceAttempts = new AtomicInteger();
    doAnswer(inv -> {
      fenceAttempts.incrementAndGet();
      throw unreachable();
    }).when(agents).fenceVm("primary", "web01");

    FailoverWorkflow fo = awaitingCommit(env, client,
        new FailoverInput("web01", FailoverType.UNPLANNED, "LATEST_PROCESSED"));
    assertThat(fo.status().fence()).startsWith("owed: ");
    env.sleep(Duration.ofMinutes(3));
    assertThat(fenceAttempts.get()).isGreaterThanOrEqualTo(3);

    fo.cancel(new OperatorRequest(null));
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.CANCELLED);
    assertThat(end.fence()).startsWith("not needed");
    int attempts = fenceAttempts.get();
    env.sleep(Duration.ofMinutes(10));
    assertThat(fenceAttempts.get()).as("no fence attempts after the cancel").isEqualTo(attempts);
    verify(agents).stopReplica("secondary", "web01");
    verify(agents, never()).unfenceVm(any(), any());
    verify(agents, never()).powerOn(any(), any());
    WorkflowTestSupport.awaitVirtual(env,
        () -> protection.status().state() == ProtectionState.PROTECTED);
    assertThat(protection.status().resyncReason()).isNull();
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  @Test
  void aFenceOwedAndAppliedBeforeACancelIsLiftedAndTheSourceRestarted(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    protect(env, client);
    AtomicInteger fenceAttempts = new AtomicInteger();
    doAnswer(inv -> {
      if (fenceAttempts.incrementAndGet() <= 3) {
        throw unreachable();
      }
      return null;
    }).when(agents).fenceVm("primary", "web01");

    FailoverWorkflow fo = awaitingCommit(env, client,
        new FailoverInput("web01", FailoverType.UNPLANNED, "LATEST_PROCESSED"));
    assertThat(fo.status().fence()).startsWith("owed: ");
    // primary answers on the fourth attempt, while the failover awaits its decision
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().fence().startsWith("fenced"));
    assertThat(fo.status().state()).isEqualTo(FailoverState.AWAITING_COMMIT);

    fo.cancel(new OperatorRequest(null));
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.CANCELLED);
    assertThat(end.fence()).startsWith("lifted");
    InOrder order = inOrder(agents);
    order.verify(agents).stopReplica("secondary", "web01");
    order.verify(agents).unfenceVm("primary", "web01");
    order.verify(agents).powerOn("primary", "web01");
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  @Test
  void changeRecoveryPointMovesTheReplicaVmToAnOlderThenANewerPoint(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    protect(env, client);
    env.sleep(Duration.ofSeconds(125)); // rp-1 .. rp-5
    FailoverWorkflow fo = planned(env, client);
    assertThat(fo.status().recoveryPoint().id()).isEqualTo("rp-6");

    // as an operator sends it: one JSON object
    WorkflowStub untyped = client.newUntypedWorkflowStub(FailoverWorkflow.workflowId("web01"));
    untyped.signal("changeRecoveryPoint", Map.of("recoveryPoint", "rp-3"));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().pointsTried().size() == 2
        && fo.status().state() == FailoverState.AWAITING_COMMIT);
    FailoverStatus older = fo.status();
    assertThat(older.recoveryPoint().id()).isEqualTo("rp-3");
    assertThat(older.steps()).anyMatch(s -> s.contains("replica VM stopped at rp-6"));
    assertThat(older.steps()).anyMatch(s -> s.contains("started on secondary at rp-3")
        && s.contains("the replica's disks stay at rp-6 until a commit"));

    fo.changeRecoveryPoint(new ChangeRecoveryPoint("rp-5"));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().pointsTried().size() == 3
        && fo.status().state() == FailoverState.AWAITING_COMMIT);
    assertThat(fo.status().recoveryPoint().id()).isEqualTo("rp-5");

    // the point it already runs at: nothing to do
    fo.changeRecoveryPoint(new ChangeRecoveryPoint("rp-5"));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().steps().stream()
        .anyMatch(s -> s.contains("already runs at rp-5")));

    fo.commit(new OperatorRequest(null));
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.recoveryPoint().id()).isEqualTo("rp-5");
    assertThat(ids(end.pointsTried())).containsExactly("rp-6", "rp-3", "rp-5");
    InOrder order = inOrder(agents);
    order.verify(agents).startReplica(eq("secondary"), eq("web01"), eq(6L), matches(key(1)));
    order.verify(agents).stopReplica("secondary", "web01");
    order.verify(agents).startReplica(eq("secondary"), eq("web01"), eq(3L), matches(key(2)));
    order.verify(agents).stopReplica("secondary", "web01");
    order.verify(agents).startReplica(eq("secondary"), eq("web01"), eq(5L), matches(key(3)));
    order.verify(agents).promoteReplica(PLAN);
    verify(agents, times(3)).startReplica(any(), any(), anyLong(), any());
    verify(agents, times(2)).stopReplica(any(), any());
    verify(agents, never()).rollbackReplica(any(), any(), anyLong());
    // one run, one key prefix: a retried start is the same start, each new one a new key
    List<String> keys = mockingDetails(agents).getInvocations().stream()
        .filter(i -> i.getMethod().getName().equals("startReplica"))
        .map(i -> i.getArgument(3, String.class)).toList();
    assertThat(keys).doesNotHaveDuplicates();
    assertThat(keys).extracting(k -> k.substring(0, 36)).containsOnly(keys.get(0).substring(0, 36));
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  @Test
  void aChangeRecoveryPointThatCannotBeFollowedIsRefusedAndTheReplicaVmKeepsRunning(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    protect(env, client);
    FailoverWorkflow fo = planned(env, client);
    RecoveryPoint running = fo.status().recoveryPoint();

    for (String asked : List.of("yesterday", "rp-99", "LATEST_APP_CONSISTENT")) {
      fo.changeRecoveryPoint(new ChangeRecoveryPoint(asked));
      WorkflowTestSupport.awaitVirtual(env, () -> fo.status().steps().stream()
          .anyMatch(s -> s.contains("changeRecoveryPoint to " + asked + " refused")));
    }

    FailoverStatus still = fo.status();
    assertThat(still.state()).isEqualTo(FailoverState.AWAITING_COMMIT);
    assertThat(still.error()).isNull();
    assertThat(still.recoveryPoint()).isEqualTo(running);
    assertThat(still.pointsTried()).containsExactly(running);
    assertThat(still.steps()).anyMatch(s -> s.contains("changeRecoveryPoint to rp-99 refused: "
        + "recovery point rp-99 is not retained; retained: [rp-1, rp-2]"));
    assertThat(still.steps()).anyMatch(s -> s.contains("changeRecoveryPoint to yesterday "
        + "refused: field 'recoveryPoint': 'yesterday' is not LATEST"));
    assertThat(still.steps()).anyMatch(s -> s.contains("to LATEST_APP_CONSISTENT refused: the "
        + "replica retains no app-consistent point"));
    verify(agents, never()).stopReplica(any(), any());
    verify(agents, times(1)).startReplica(any(), any(), anyLong(), any());

    fo.commit(new OperatorRequest(null));
    assertThat(result(fo).recoveryPoint()).isEqualTo(running);
  }

  @Test
  void aPointTheReplicaVmCannotStartAtLeavesItRunningWhereItWas(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    doAnswer(inv -> {
      throw ApplicationFailure.newNonRetryableFailure("undo data of rp-1 is damaged",
          "INVALID_STATE");
    }).when(agents).startReplica(eq("secondary"), eq("web01"), eq(1L), anyString());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow fo = planned(env, client);

    fo.changeRecoveryPoint(new ChangeRecoveryPoint("rp-1"));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().pointsTried().size() == 2
        && fo.status().state() == FailoverState.AWAITING_COMMIT);
    FailoverStatus still = fo.status();
    assertThat(still.recoveryPoint().id()).isEqualTo("rp-2");
    assertThat(ids(still.pointsTried())).containsExactly("rp-2", "rp-2");
    assertThat(still.steps()).anyMatch(s -> s.contains("changeRecoveryPoint to rp-1 failed")
        && s.contains("undo data of rp-1 is damaged") && s.contains("again at rp-2"));
    InOrder order = inOrder(agents);
    order.verify(agents).startReplica(eq("secondary"), eq("web01"), eq(2L), matches(key(1)));
    order.verify(agents).stopReplica("secondary", "web01");
    order.verify(agents).startReplica(eq("secondary"), eq("web01"), eq(1L), matches(key(2)));
    order.verify(agents).startReplica(eq("secondary"), eq("web01"), eq(2L), matches(key(3)));

    // and if it cannot run anywhere, the failover rolls back as if the first start had failed
    doAnswer(inv -> {
      throw ApplicationFailure.newNonRetryableFailure("replica store offline", "INVALID_STATE");
    }).when(agents).startReplica(anyString(), anyString(), anyLong(), anyString());
    fo.changeRecoveryPoint(new ChangeRecoveryPoint("rp-1"));
    assertThat(catchThrowable(() -> result(fo))).rootCause()
        .hasMessageContaining("replica store offline");
    assertThat(fo.status().state()).isEqualTo(FailoverState.FAILED);
    order.verify(agents).stopReplica("secondary", "web01");
    order.verify(agents).unfenceVm("primary", "web01");
    order.verify(agents).powerOn("primary", "web01");
    WorkflowTestSupport.awaitVirtual(env,
        () -> protection.status().state() == ProtectionState.PROTECTED);
    assertThat(protection.status().resyncReason()).isNull();
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  @Test
  void aCommitPolicyKeepsItsDeadlineAcrossAChangeRecoveryPoint(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    protect(env, client);
    env.sleep(Duration.ofSeconds(65)); // rp-1 .. rp-3
    FailoverWorkflow fo = awaitingCommit(env, client, new FailoverInput("web01",
        FailoverType.PLANNED, "LATEST", new CommitPolicy(CommitPolicy.Action.COMMIT,
            Duration.ofHours(1)), null));
    Instant due = fo.status().decidesItselfAt();
    assertThat(Duration.between(Instant.ofEpochMilli(env.currentTimeMillis()), due))
        .isBetween(Duration.ofMinutes(59), Duration.ofHours(1));

    env.sleep(Duration.ofMinutes(20));
    fo.changeRecoveryPoint(new ChangeRecoveryPoint("rp-2"));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().pointsTried().size() == 2
        && fo.status().state() == FailoverState.AWAITING_COMMIT);
    assertThat(fo.status().decidesItselfAt()).as("the deadline does not move").isEqualTo(due);

    env.sleep(Duration.ofMinutes(38));
    assertThat(fo.status().state()).as("not before its time")
        .isEqualTo(FailoverState.AWAITING_COMMIT);
    verify(agents, never()).promoteReplica(any());
    env.sleep(Duration.ofMinutes(2));
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.recoveryPoint().id()).isEqualTo("rp-2");
    // decided at the deadline set before the change
    String decided = end.steps().stream().filter(s -> s.contains("the commit policy commits"))
        .findFirst().orElseThrow();
    assertThat(timeOf(decided)).isBetween(due, due.plusSeconds(2));
    verify(agents).promoteReplica(PLAN);
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  @Test
  void aPointThatIsNotRetainedFailsTheFailoverBeforeTheSourceIsTouched(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow fo = start(client, new FailoverInput("web01", FailoverType.UNPLANNED,
        "rp-99"));
    assertThat(catchThrowable(() -> result(fo))).rootCause()
        .hasMessageContaining("rp-99 is not retained");
    verify(agents, never()).fenceVm(any(), any());
    verify(agents, never()).powerOn(any(), any());
    verify(agents, never()).startReplica(any(), any(), anyLong(), any());
    WorkflowTestSupport.awaitVirtual(env,
        () -> protection.status().state() == ProtectionState.PROTECTED);
    assertThat(protection.status().resyncReason()).isNull();
  }

  @Test
  void plannedFailoverRefusesAReplicaThatNeedsAResync(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    doReturn(new SourceHealth(0, 1L << 30, "disk0 image changed while the agent was down"))
        .when(agents).sourceHealth(any());
    FailoverWorkflow fo = start(client, new FailoverInput("web01", FailoverType.PLANNED, null));
    assertThat(catchThrowable(() -> result(fo))).rootCause()
        .hasMessageContaining("needs a resync");
    verify(agents, never()).powerOff(any(), any());
    verify(agents, never()).fenceVm(any(), any());
    WorkflowTestSupport.awaitVirtual(env,
        () -> protection.status().state() == ProtectionState.PROTECTED);
  }

  @Test
  void aCommitPolicyCommitsByItselfWhenNobodyDecides(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    protect(env, client);
    // as an operator types it: one JSON object, the duration in ISO-8601
    WorkflowStub untyped = client.newUntypedWorkflowStub("Failover", WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE).setWorkflowId(FailoverWorkflow.workflowId("web01"))
        .build());
    untyped.start(Map.of("vm", "web01", "type", "PLANNED",
        "commitPolicy", Map.of("action", "COMMIT", "after", "PT1H")));
    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class,
        FailoverWorkflow.workflowId("web01"));
    WorkflowTestSupport.awaitVirtual(env,
        () -> fo.status().state() == FailoverState.AWAITING_COMMIT);
    FailoverStatus waiting = fo.status();
    assertThat(waiting.commitPolicy().action()).isEqualTo(CommitPolicy.Action.COMMIT);
    assertThat(Duration.between(Instant.ofEpochMilli(env.currentTimeMillis()),
        waiting.decidesItselfAt())).isBetween(Duration.ofMinutes(59), Duration.ofHours(1));

    env.sleep(Duration.ofMinutes(59));
    assertThat(fo.status().state()).as("not before its time")
        .isEqualTo(FailoverState.AWAITING_COMMIT);
    verify(agents, never()).promoteReplica(any());
    env.sleep(Duration.ofMinutes(2));
    FailoverStatus end = result(fo);
    assertThat(end.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.decidesItselfAt()).isNull();
    assertThat(end.steps()).anyMatch(s -> s.contains("the commit policy commits"));
    verify(agents).promoteReplica(PLAN);
    verify(agents, never()).commitFailover(any());
  }

  @Test
  void aCommitPolicyCancelsByItselfAndASignalBeforeItWins(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow fo = awaitingCommit(env, client, new FailoverInput("web01",
        FailoverType.PLANNED, "LATEST", new CommitPolicy(CommitPolicy.Action.CANCEL,
            Duration.ofMinutes(30)), null));
    env.sleep(Duration.ofMinutes(31));
    FailoverStatus cancelled = result(fo);
    assertThat(cancelled.state()).isEqualTo(FailoverState.CANCELLED);
    assertThat(cancelled.steps()).anyMatch(s -> s.contains("the commit policy cancels"));
    InOrder order = inOrder(agents);
    order.verify(agents).stopReplica("secondary", "web01");
    order.verify(agents).unfenceVm("primary", "web01");
    order.verify(agents).powerOn("primary", "web01");
    WorkflowTestSupport.awaitVirtual(env,
        () -> protection.status().state() == ProtectionState.PROTECTED);
    assertThat(protection.status().resyncReason()).isNull();

    // a second failover: the operator's commit before the policy's time is what happens
    FailoverWorkflow second = awaitingCommit(env, client, new FailoverInput("web01",
        FailoverType.PLANNED, "LATEST", new CommitPolicy(CommitPolicy.Action.CANCEL,
            Duration.ofMinutes(30)), null));
    env.sleep(Duration.ofMinutes(10));
    second.commit(new OperatorRequest("checked"));
    FailoverStatus committed = result(second);
    assertThat(committed.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(committed.steps()).noneMatch(s -> s.contains("the commit policy cancels"));
    verify(agents).promoteReplica(PLAN);
  }

  @Test
  void badFailoverInputFailsAtOnce(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    when(agents.describeProtection("db01")).thenThrow(ApplicationFailure.newNonRetryableFailure(
        "VM db01 is not protected on any site", "NotProtected"));
    WorkflowTestSupport.start(env, agents);

    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failover",
        Map.of("vm", "web01", "type", "SIDEWAYS"))).contains("SIDEWAYS");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failover", Map.of("vm", "web01")))
        .contains("field 'type' is required");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failover",
        Map.of("vm", "web01", "type", "PLANNED", "recoveryPoint", "yesterday")))
        .contains("recoveryPoint");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failover", Map.of("vm", "web01", "type",
        "PLANNED", "commitPolicy", Map.of("after", "PT1H")))).contains("commitPolicy.action");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failover", Map.of("vm", "web01", "type",
        "PLANNED", "commitPolicy", Map.of("action", "COMMIT", "after", "PT0S"))))
        .contains("commitPolicy.after");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failover", Map.of("vm", "web01", "type",
        "PLANNED", "commitPolicy", Map.of("action", "COMMIT", "after", "P90D"))))
        .contains("at most 30 days");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failover", Map.of("vm", "web01", "type",
        "PLANNED", "commitPolicy", Map.of("action", "MAYBE", "after", "PT1H")))).contains("MAYBE");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failover",
        Map.of("vm", "db01", "type", "PLANNED"))).contains("VM db01 is not protected");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failover",
        Map.of("vm", "web01", "type", "PLANNED"))).contains("no running ProtectVm workflow");
  }

  /**
   * Histories recorded with the code before version replicaOnLayers (commit ccd3358: roll back,
   * powerOn the replica, commitFailover, resync after a cancel) replay on the code as it is, so
   * runs in flight when it is deployed carry on along their old path.
   */
  @Test
  void failoversRecordedBeforeReplicaOnLayersReplay() {
    for (String recorded : List.of(
        "failover-planned-committed-before-replicaOnLayers.json",
        "failover-planned-policy-committed-before-replicaOnLayers.json",
        "failover-unplanned-rolledback-cancelled-before-replicaOnLayers.json")) {
      assertThatCode(() -> WorkflowReplayer.replayWorkflowExecutionFromResource(
          "histories/" + recorded, FailoverWorkflowImpl.class))
          .as(recorded + " replays").doesNotThrowAnyException();
    }
  }
}
