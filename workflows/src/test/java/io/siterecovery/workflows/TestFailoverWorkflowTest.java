package io.siterecovery.workflows;

import static io.siterecovery.workflows.ProtectVmWorkflowTest.failureOf;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyLong;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.ArgumentMatchers.eq;
import static org.mockito.Mockito.calls;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.doReturn;
import static org.mockito.Mockito.doThrow;
import static org.mockito.Mockito.inOrder;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.times;
import static org.mockito.Mockito.verify;
import static org.mockito.Mockito.when;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.PointInfo;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.TestCleanup;
import io.siterecovery.activities.AgentActivityRecords.TestVm;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.failover.FailoverWorkflowImpl;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.CanceledFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import io.temporal.testing.WorkflowReplayer;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.mockito.InOrder;

@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class TestFailoverWorkflowTest {
  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  private static final List<String> EXPORTS = List.of("nbd://127.0.0.1:10810/web01-test/disk0",
      "nbd://127.0.0.1:10810/web01-test/disk1");

  /** Healthy agents whose secondary site keeps at most one test VM, as the agent does. */
  private static AgentActivities agentsWithTestVms(TestWorkflowEnvironment env,
      AtomicReference<TestVm> live) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    when(agents.createTestVm(eq("secondary"), eq("web01"), anyLong(), anyString()))
        .thenAnswer(inv -> {
          TestVm created = new TestVm("web01", "web01-test", inv.getArgument(2, Long.class),
              Instant.ofEpochMilli(env.currentTimeMillis()), inv.getArgument(3, String.class),
              Instant.ofEpochMilli(env.currentTimeMillis()), EXPORTS);
          live.set(created);
          return created;
        });
    when(agents.findTestVm("secondary", "web01")).thenAnswer(inv -> live.get());
    when(agents.deleteTestVm("secondary", "web01")).thenAnswer(inv ->
        new TestCleanup("web01-test", live.getAndSet(null) != null, List.of()));
    return agents;
  }

  private static FailoverWorkflow startTest(WorkflowClient client, FailoverInput input) {
    FailoverWorkflow wf = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.testWorkflowId("web01")).build());
    WorkflowClient.start(wf::failover, input);
    return wf;
  }

  private static FailoverWorkflow testing(TestWorkflowEnvironment env, WorkflowClient client,
      FailoverInput input) {
    FailoverWorkflow wf = startTest(client, input);
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == FailoverState.TESTING);
    return wf;
  }

  private static FailoverStatus result(FailoverWorkflow wf) {
    return WorkflowStub.fromTyped(wf).getResult(FailoverStatus.class);
  }

  private static ProtectVmWorkflow protect(TestWorkflowEnvironment env, WorkflowClient client) {
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", null));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    return wf;
  }

  private static List<String> signalsTo(WorkflowClient client, String workflowId) {
    return client.streamHistory(workflowId)
        .filter(HistoryEvent::hasWorkflowExecutionSignaledEventAttributes)
        .map(e -> e.getWorkflowExecutionSignaledEventAttributes().getSignalName()).toList();
  }

  /** The recorded run replays on the code as it is: nothing in it is non-deterministic. */
  private static void replays(WorkflowClient client, String workflowId) {
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecution(
        client.fetchHistory(workflowId), FailoverWorkflowImpl.class))
        .as(workflowId + " replays").doesNotThrowAnyException();
  }

  @Test
  void aTestVmRunsWhileReplicationCarriesOnAndCleanupDeletesItKeepingTheNotes(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    env.sleep(Duration.ofSeconds(61));

    // as an operator types it: one JSON object
    WorkflowStub untyped = client.newUntypedWorkflowStub("Failover", WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.testWorkflowId("web01")).build());
    untyped.start(Map.of("vm", "web01", "type", "TEST", "recoveryPoint", "rp-2"));
    FailoverWorkflow test = client.newWorkflowStub(FailoverWorkflow.class,
        FailoverWorkflow.testWorkflowId("web01"));
    WorkflowTestSupport.awaitVirtual(env, () -> test.status().state() == FailoverState.TESTING);

    FailoverStatus testing = test.status();
    assertThat(testing.type()).isEqualTo(FailoverType.TEST);
    assertThat(testing.recoveryPoint().id()).isEqualTo("rp-2");
    assertThat(testing.targetSite()).isEqualTo("secondary");
    assertThat(testing.test().testVm()).isEqualTo("web01-test");
    assertThat(testing.test().exports()).isEqualTo(EXPORTS);
    assertThat(Duration.between(Instant.ofEpochMilli(env.currentTimeMillis()),
        testing.test().cleanupDueAt())).isBetween(Duration.ofDays(14).minusMinutes(1),
        Duration.ofDays(14));
    assertThat(testing.steps()).anyMatch(s -> s.contains("cleans itself up at"));
    assertThat(WorkflowTestSupport.currentDetails(client, "test-failover-web01"))
        .startsWith("**TESTING**\n").contains("- Failover: TEST, primary → secondary\n")
        .contains("- Recovery point: rp-2 at ")
        .contains("- Test VM: web01-test, exports " + String.join(" ", EXPORTS) + "\n")
        .contains("- Cleanup due: " + testing.test().cleanupDueAt() + "\n");
    verify(agents).createTestVm(eq("secondary"), eq("web01"), eq(2L),
        org.mockito.ArgumentMatchers.matches("[0-9a-f-]{36}"));

    long cycles = protection.status().deltaCycles();
    env.sleep(Duration.ofMinutes(2));
    assertThat(protection.status().state()).isEqualTo(ProtectionState.PROTECTED);
    assertThat(protection.status().deltaCycles()).as("replication carries on during the test")
        .isGreaterThanOrEqualTo(cycles + 3);
    assertThat(test.status().state()).isEqualTo(FailoverState.TESTING);
    verify(agents, never()).deleteTestVm(anyString(), anyString());

    untyped.signal("cleanup", Map.of("notes", "orders page answered; db01 not in scope"));
    FailoverStatus end = result(test);
    assertThat(end.state()).isEqualTo(FailoverState.CLEANED_UP);
    assertThat(end.test().notes()).isEqualTo("orders page answered; db01 not in scope");
    assertThat(end.test().cleanedUpBy()).isEqualTo("the 'cleanup' signal");
    assertThat(end.test().remaining()).isEmpty();
    assertThat(end.test().cleanupDueAt()).isNull();
    assertThat(end.steps()).anyMatch(s -> s.contains("web01-test and its scratch data deleted"));
    verify(agents).deleteTestVm("secondary", "web01");
    assertThat(live.get()).isNull();

    verify(agents, never()).powerOff(any(), any());
    verify(agents, never()).powerOn(any(), any());
    verify(agents, never()).rollbackReplica(any(), any(), anyLong());
    assertThat(signalsTo(client, ProtectVmWorkflow.workflowId("web01")))
        .as("a test never tells ProtectVm anything").doesNotContain("failover");
    assertThat(protection.status().state()).isEqualTo(ProtectionState.PROTECTED);
    replays(client, FailoverWorkflow.testWorkflowId("web01"));
  }

  @Test
  void maxTestDurationCleansUpByItself(TestWorkflowEnvironment env, WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    WorkflowTestSupport.start(env, agents);

    FailoverWorkflow test = testing(env, client, new FailoverInput("web01", FailoverType.TEST,
        null));
    assertThat(test.status().test().maxTestDuration()).isEqualTo(Duration.ofDays(14));
    env.sleep(Duration.ofDays(14).minusMinutes(2));
    assertThat(test.status().state()).as("not before its time").isEqualTo(FailoverState.TESTING);
    verify(agents, never()).deleteTestVm(anyString(), anyString());
    env.sleep(Duration.ofMinutes(3));
    FailoverStatus end = result(test);
    assertThat(end.state()).isEqualTo(FailoverState.CLEANED_UP);
    assertThat(end.test().cleanedUpBy()).isEqualTo("maxTestDuration P14D");
    assertThat(end.test().notes()).isNull();
    verify(agents).deleteTestVm("secondary", "web01");

    // a shorter limit in the input
    FailoverWorkflow shorter = testing(env, client, new FailoverInput("web01", FailoverType.TEST,
        "LATEST", null, Duration.ofHours(8)));
    env.sleep(Duration.ofHours(8).plusMinutes(1));
    assertThat(result(shorter).test().cleanedUpBy()).isEqualTo("maxTestDuration PT8H");
    verify(agents, times(2)).deleteTestVm("secondary", "web01");
  }

  @Test
  void aCleanupThatLeavesSomethingRetriesAndOnlyThenReportsCleanedUp(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    WorkflowTestSupport.start(env, agents);
    FailoverWorkflow test = testing(env, client, new FailoverInput("web01", FailoverType.TEST,
        null));
    List<String> stuck = List.of("export web01-test/disk1 (a client is still connected)");
    AtomicInteger attempts = new AtomicInteger();
    doAnswer(inv -> attempts.incrementAndGet() <= 2
        ? new TestCleanup("web01-test", true, stuck)
        : new TestCleanup("web01-test", live.getAndSet(null) != null, List.of()))
        .when(agents).deleteTestVm("secondary", "web01");

    test.cleanup(new CleanupRequest(null));
    WorkflowTestSupport.awaitVirtual(env, () -> attempts.get() == 1);
    env.sleep(Duration.ofSeconds(1));
    FailoverStatus first = test.status();
    assertThat(first.state()).isEqualTo(FailoverState.CLEANING_UP);
    assertThat(first.test().remaining()).isEqualTo(stuck);
    assertThat(first.steps()).anyMatch(s -> s.contains("left " + stuck)
        && s.contains("trying again in 5 min (attempt 1 of 12)"));

    env.sleep(Duration.ofMinutes(5));
    assertThat(attempts.get()).isEqualTo(2);
    assertThat(test.status().state()).isEqualTo(FailoverState.CLEANING_UP);
    env.sleep(Duration.ofMinutes(5));
    FailoverStatus end = result(test);
    assertThat(end.state()).isEqualTo(FailoverState.CLEANED_UP);
    assertThat(end.test().remaining()).isEmpty();
    assertThat(end.test().notes()).isNull();
    verify(agents, times(3)).deleteTestVm("secondary", "web01");
  }

  @Test
  void aCleanupStillIncompleteAfterAnHourWaitsForTheOperator(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    WorkflowTestSupport.start(env, agents);
    FailoverWorkflow test = testing(env, client, new FailoverInput("web01", FailoverType.TEST,
        null));
    doReturn(new TestCleanup("web01-test", true, List.of("file web01-test/disk0.scratch")))
        .when(agents).deleteTestVm("secondary", "web01");

    test.cleanup(new CleanupRequest("drill done"));
    env.sleep(Duration.ofHours(2));
    FailoverStatus waiting = test.status();
    assertThat(waiting.state()).isEqualTo(FailoverState.CLEANING_UP);
    assertThat(waiting.steps()).anyMatch(s -> s.contains("not clean after 12 attempts")
        && s.contains("send 'cleanup' to try again"));
    verify(agents, times(12)).deleteTestVm("secondary", "web01");

    doReturn(new TestCleanup("web01-test", true, List.of()))
        .when(agents).deleteTestVm("secondary", "web01");
    test.cleanup(new CleanupRequest("removed the scratch file by hand"));
    FailoverStatus end = result(test);
    assertThat(end.state()).isEqualTo(FailoverState.CLEANED_UP);
    assertThat(end.test().notes()).as("the first request's notes").isEqualTo("drill done");
    verify(agents, times(13)).deleteTestVm("secondary", "web01");
  }

  @Test
  void cancellingTheWorkflowDeletesTheTestVm(TestWorkflowEnvironment env, WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    WorkflowTestSupport.start(env, agents);
    FailoverWorkflow test = testing(env, client, new FailoverInput("web01", FailoverType.TEST,
        null));
    WorkflowStub.fromTyped(test).cancel();
    Throwable failure = catchThrowable(() -> result(test));
    assertThat(failure).isInstanceOf(WorkflowFailedException.class)
        .hasCauseInstanceOf(CanceledFailure.class);
    verify(agents).deleteTestVm("secondary", "web01");
    assertThat(live.get()).isNull();
    FailoverStatus end = test.status();
    assertThat(end.state()).isEqualTo(FailoverState.CLEANED_UP);
    assertThat(end.test().cleanedUpBy()).isEqualTo("cancellation of the workflow");
  }

  @Test
  void badTestInputFailsAtOnceNamingTheProblem(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    when(agents.describeProtection("db01")).thenThrow(ApplicationFailure.newNonRetryableFailure(
        "VM db01 is not protected on any site", "NotProtected"));
    WorkflowTestSupport.start(env, agents);

    assertThat(failureOf(client, "Failover", Map.of("vm", "db01", "type", "TEST")))
        .contains("VM db01 is not protected");
    assertThat(failureOf(client, "Failover", Map.of("vm", "web01", "type", "TEST",
        "recoveryPoint", "rp-99"))).contains("recovery point rp-99 is not retained");
    assertThat(failureOf(client, "Failover", Map.of("vm", "web01", "type", "TEST",
        "recoveryPoint", "yesterday"))).contains("field 'recoveryPoint'");
    assertThat(failureOf(client, "Failover", Map.of("vm", "web01", "type", "TEST",
        "commitPolicy", Map.of("action", "COMMIT", "after", "PT1H"))))
        .contains("field 'commitPolicy' does not apply to a TEST failover");
    assertThat(failureOf(client, "Failover", Map.of("vm", "web01", "type", "TEST",
        "maxTestDuration", "P30D"))).contains("field 'maxTestDuration'").contains("at most policy 'default''s maxTestDuration P14D; got P30D");
    assertThat(failureOf(client, "Failover", Map.of("vm", "web01", "type", "TEST",
        "maxTestDuration", "PT0S"))).contains("field 'maxTestDuration'");
    assertThat(failureOf(client, "Failover", Map.of("vm", "web01", "type", "PLANNED",
        "maxTestDuration", "PT1H"))).contains("'maxTestDuration' applies to TEST failovers only");
    assertThat(failureOf(client, "Failover", Map.of("vm", "web01", "type", "TEST",
        "notes", "x"))).contains("notes");

    // a point the replica no longer retains: pruned by retention
    doReturn(new ReplicaPoint(7, Instant.ofEpochMilli(env.currentTimeMillis()), true,
        List.of(new PointInfo(5, Instant.EPOCH, false), new PointInfo(6, Instant.EPOCH, true),
            new PointInfo(7, Instant.EPOCH, false))))
        .when(agents).replicaPoint("secondary", "web01");
    assertThat(failureOf(client, "Failover", Map.of("vm", "web01", "type", "TEST",
        "recoveryPoint", "rp-3"))).contains("rp-3 is not retained; retained: [rp-5, rp-6, rp-7]");
    verify(agents, never()).createTestVm(any(), any(), anyLong(), any());
  }

  @Test
  void aSecondTestWhileOneLivesIsRefusedAndTheOtherTestVmIsLeftAlone(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>(new TestVm("web01", "web01-test", 1,
        Instant.EPOCH, "someone-elses-key", Instant.EPOCH, EXPORTS));
    AgentActivities agents = agentsWithTestVms(env, live);
    doThrow(ApplicationFailure.newNonRetryableFailure("web01 already has a live test VM "
        + "web01-test (created under another key)", "INVALID_STATE"))
        .when(agents).createTestVm(anyString(), anyString(), anyLong(), anyString());
    WorkflowTestSupport.start(env, agents);

    FailoverWorkflow test = startTest(client, new FailoverInput("web01", FailoverType.TEST, null));
    Throwable failure = catchThrowable(() -> result(test));
    assertThat(failure).isInstanceOf(WorkflowFailedException.class).rootCause()
        .hasMessageContaining("cannot create the test VM of web01 on secondary: web01 already "
            + "has a live test VM web01-test (created under another key). One test per VM");
    FailoverStatus failed = test.status();
    assertThat(failed.state()).isEqualTo(FailoverState.FAILED);
    assertThat(failed.error()).contains("'cleanup' to test-failover-web01");
    verify(agents, never()).deleteTestVm(anyString(), anyString());
    assertThat(live.get().key()).isEqualTo("someone-elses-key");
  }

  @Test
  void aFailedCreationDeletesWhatItLeft(TestWorkflowEnvironment env, WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    doAnswer(inv -> {
      live.set(new TestVm("web01", "web01-test", 1, Instant.EPOCH, inv.getArgument(3),
          Instant.EPOCH, List.of()));
      throw ApplicationFailure.newNonRetryableFailure("scratch space full", "IO_ERROR");
    }).when(agents).createTestVm(anyString(), anyString(), anyLong(), anyString());
    WorkflowTestSupport.start(env, agents);

    FailoverWorkflow test = startTest(client, new FailoverInput("web01", FailoverType.TEST, null));
    assertThat(catchThrowable(() -> result(test))).rootCause()
        .hasMessageContaining("scratch space full");
    verify(agents).deleteTestVm("secondary", "web01");
    assertThat(live.get()).isNull();
    FailoverStatus failed = test.status();
    assertThat(failed.state()).isEqualTo(FailoverState.FAILED);
    assertThat(failed.steps()).anyMatch(s -> s.contains("the half-made web01-test was deleted"));
  }

  @Test
  void aPlannedFailoverDuringATestCleansItUpFirstAndTheTestEndsSayingSo(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow test = testing(env, client, new FailoverInput("web01", FailoverType.TEST,
        null));

    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover, new FailoverInput("web01", FailoverType.PLANNED, null));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().state() == FailoverState.AWAITING_COMMIT);
    assertThat(fo.status().steps()).anyMatch(s -> s.contains("a test failover was running: its "
        + "test VM web01-test (rp-") && s.contains("test-failover-web01 was told to end"));
    InOrder order = inOrder(agents);
    order.verify(agents, calls(1)).deleteTestVm("secondary", "web01");
    order.verify(agents).powerOff("primary", "web01");
    order.verify(agents).startReplica(eq("secondary"), eq("web01"), anyLong(), anyString());

    FailoverStatus testEnd = result(test);
    assertThat(testEnd.state()).isEqualTo(FailoverState.CLEANED_UP);
    assertThat(testEnd.test().notes())
        .isEqualTo("cleaned up by failover-web01 before a PLANNED failover");
    assertThat(testEnd.steps()).anyMatch(s -> s.contains("web01-test was already gone"));

    fo.commit(new OperatorRequest(null));
    assertThat(result(fo).state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(protection.status().state()).isEqualTo(ProtectionState.FAILED_OVER);
    replays(client, FailoverWorkflow.testWorkflowId("web01"));
    replays(client, FailoverWorkflow.workflowId("web01"));
  }

  @Test
  void aFailoverRefusesToStartWhileTheTestVmCannotBeRemoved(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>(new TestVm("web01", "web01-test", 1,
        Instant.EPOCH, "k", Instant.EPOCH, EXPORTS));
    AgentActivities agents = agentsWithTestVms(env, live);
    doReturn(new TestCleanup("web01-test", true, List.of("inventory entry web01-test")))
        .when(agents).deleteTestVm("secondary", "web01");
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);

    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover, new FailoverInput("web01", FailoverType.UNPLANNED, null));
    assertThat(catchThrowable(() -> result(fo))).rootCause().hasMessageContaining(
        "could not be removed before the UNPLANNED failover; still there: "
            + "[inventory entry web01-test]");
    verify(agents, never()).powerOn(any(), any());
    verify(agents, never()).rollbackReplica(any(), any(), anyLong());
    verify(agents, never()).fenceVm(any(), any());
    verify(agents, never()).startReplica(any(), any(), anyLong(), any());
    WorkflowTestSupport.awaitVirtual(env, () -> protection.status().state() == ProtectionState.PROTECTED);
    assertThat(protection.status().resyncReason()).isNull();
  }

  @Test
  void anUnplannedFailoverRemovesAnOrphanedTestVm(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>(new TestVm("web01", "web01-test", 1,
        Instant.EPOCH, "k", Instant.EPOCH, EXPORTS));
    AgentActivities agents = agentsWithTestVms(env, live);
    WorkflowTestSupport.start(env, agents);
    protect(env, client);

    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover, new FailoverInput("web01", FailoverType.UNPLANNED, null));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().state() == FailoverState.AWAITING_COMMIT);
    assertThat(fo.status().steps()).anyMatch(s -> s.contains("its test VM web01-test")
        && s.contains("no test-failover-web01 was running to tell"));
    assertThat(live.get()).isNull();
    fo.cancel(new OperatorRequest(null));
    assertThat(result(fo).state()).isEqualTo(FailoverState.CANCELLED);
  }

  private static FailoverWorkflow startFailover(WorkflowClient client, FailoverType type) {
    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover, new FailoverInput("web01", type, null));
    return fo;
  }

  /** Starts a TEST and waits until it either runs its test VM or has failed. */
  private static FailoverStatus testStartedBeside(TestWorkflowEnvironment env,
      WorkflowClient client) {
    FailoverWorkflow test = startTest(client, new FailoverInput("web01", FailoverType.TEST, null));
    WorkflowTestSupport.awaitVirtual(env, () -> test.status().state() == FailoverState.FAILED
        || test.status().state() == FailoverState.TESTING);
    return test.status();
  }

  /**
   * The race: a planned failover shutting its source down has not started the replica VM yet; a
   * test VM created now would stand in its way (the replica start meets it, retries with the
   * source down, then rolls back). The test is refused, naming the failover, which goes on.
   */
  @Test
  void aTestStartedWhileAPlannedFailoverShutsTheSourceDownIsRefusedAndTheFailoverGoesOn(
      TestWorkflowEnvironment env, WorkflowClient client) throws InterruptedException {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    CountDownLatch sourceDown = new CountDownLatch(1);
    doAnswer(inv -> {
      sourceDown.await(30, TimeUnit.SECONDS);
      return null;
    }).when(agents).powerOff("primary", "web01");
    WorkflowTestSupport.start(env, agents);
    protect(env, client);
    FailoverWorkflow fo = startFailover(client, FailoverType.PLANNED);
    WorkflowTestSupport.awaitVirtual(env,
        () -> fo.status().state() == FailoverState.SHUTTING_DOWN_SOURCE);

    FailoverStatus refused = testStartedBeside(env, client);
    assertThat(refused.state()).isEqualTo(FailoverState.FAILED);
    assertThat(refused.error()).contains("a TEST failover of web01 refused: failover-web01 is "
        + "running; start the test once it has ended");
    verify(agents, never()).createTestVm(anyString(), anyString(), anyLong(), anyString());

    sourceDown.countDown();
    WorkflowTestSupport.awaitVirtual(env,
        () -> fo.status().state() == FailoverState.AWAITING_COMMIT);
    verify(agents, times(1)).startReplica(eq("secondary"), eq("web01"), anyLong(), anyString());
    fo.commit(new OperatorRequest(null));
    assertThat(result(fo).state()).isEqualTo(FailoverState.COMMITTED);
    replays(client, FailoverWorkflow.testWorkflowId("web01"));
  }

  @Test
  void aTestWhileAFailoverAwaitsCommitIsRefusedNamingIt(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    WorkflowTestSupport.start(env, agents);
    protect(env, client);
    FailoverWorkflow fo = startFailover(client, FailoverType.UNPLANNED);
    WorkflowTestSupport.awaitVirtual(env,
        () -> fo.status().state() == FailoverState.AWAITING_COMMIT);

    FailoverStatus refused = testStartedBeside(env, client);
    assertThat(refused.state()).isEqualTo(FailoverState.FAILED);
    assertThat(refused.error()).contains("failover-web01 is running; start the test once it has "
        + "ended (committed or cancelled)");
    verify(agents, never()).createTestVm(anyString(), anyString(), anyLong(), anyString());
    assertThat(fo.status().state()).isEqualTo(FailoverState.AWAITING_COMMIT);
    fo.cancel(new OperatorRequest(null));
    assertThat(result(fo).state()).isEqualTo(FailoverState.CANCELLED);
  }

  /**
   * The other order: a test checked before the failover started, and made its VM while the
   * failover shut the source down. The failover looks again before the replica VM starts, and
   * deletes it first.
   */
  @Test
  void aTestVmMadeWhileTheFailoverShutTheSourceDownIsDeletedBeforeTheReplicaStarts(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AtomicReference<TestVm> live = new AtomicReference<>();
    AgentActivities agents = agentsWithTestVms(env, live);
    doAnswer(inv -> {
      live.set(new TestVm("web01", "web01-test", 1, Instant.EPOCH, "late", Instant.EPOCH,
          EXPORTS));
      return null;
    }).when(agents).powerOff("primary", "web01");
    AtomicReference<TestVm> atReplicaStart = new AtomicReference<>();
    doAnswer(inv -> {
      atReplicaStart.set(live.get());
      return null;
    }).when(agents).startReplica(eq("secondary"), eq("web01"), anyLong(), anyString());
    WorkflowTestSupport.start(env, agents);
    protect(env, client);

    FailoverWorkflow fo = startFailover(client, FailoverType.PLANNED);
    WorkflowTestSupport.awaitVirtual(env,
        () -> fo.status().state() == FailoverState.AWAITING_COMMIT);
    assertThat(atReplicaStart.get()).as("a test VM when the replica VM started").isNull();
    assertThat(fo.status().steps()).anyMatch(s -> s.contains("a test failover was running: its "
        + "test VM web01-test (rp-1"));
    InOrder order = inOrder(agents);
    order.verify(agents).powerOff("primary", "web01");
    order.verify(agents).deleteTestVm("secondary", "web01");
    order.verify(agents).startReplica(eq("secondary"), eq("web01"), anyLong(), anyString());
    fo.cancel(new OperatorRequest(null));
    assertThat(result(fo).state()).isEqualTo(FailoverState.CANCELLED);
    replays(client, FailoverWorkflow.workflowId("web01"));
  }
}
