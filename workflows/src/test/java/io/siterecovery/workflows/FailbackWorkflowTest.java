package io.siterecovery.workflows;

import static io.siterecovery.workflows.WorkflowTestSupport.PLAN;
import static io.siterecovery.workflows.WorkflowTestSupport.REVERSE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyLong;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.ArgumentMatchers.argThat;
import static org.mockito.ArgumentMatchers.eq;
import static org.mockito.Mockito.doAnswer;
import static org.mockito.Mockito.doReturn;
import static org.mockito.Mockito.inOrder;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.verify;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.SeedResult;
import io.siterecovery.activities.FailureTypes;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.failback.FailbackInput;
import io.siterecovery.workflows.failback.FailbackState;
import io.siterecovery.workflows.failback.FailbackStatus;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failback.FailbackWorkflowImpl;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectState;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.siterecovery.workflows.reprotect.ReverseMode;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowNotFoundException;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import io.temporal.testing.WorkflowReplayer;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.mockito.InOrder;

/**
 * Failback: the VM runs on secondary, protected back to its home primary (as Reprotect left
 * it); a planned failover home as the child failover-web01, the operator's decision passed on,
 * then reprotect-web01 so that it ends protected primary -> secondary as it started.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class FailbackWorkflowTest {
  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  /** Agents for a VM failed over to secondary and reprotected back to primary. */
  private static AgentActivities awayFromHome(TestWorkflowEnvironment env) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.followTheVm(agents, REVERSE, new AtomicReference<>("FAILED_OVER"));
    return agents;
  }

  /** protect-web01 as Reprotect left it: secondary -> primary. */
  private static ProtectVmWorkflow protectedBackHome(TestWorkflowEnvironment env,
      WorkflowClient client) {
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", null));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    assertThat(wf.status().sourceSite()).isEqualTo("secondary");
    return wf;
  }

  /** Starts Failback as an operator does, and waits until its failover home awaits commit. */
  private static WorkflowStub failingBack(TestWorkflowEnvironment env, WorkflowClient client,
      Map<String, Object> input) {
    WorkflowStub untyped = client.newUntypedWorkflowStub("Failback", WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailbackWorkflow.workflowId("web01")).build());
    untyped.start(input);
    FailoverWorkflow home = failoverHome(client);
    WorkflowTestSupport.awaitVirtual(env, () -> {
      try {
        return home.status().state() == FailoverState.AWAITING_COMMIT;
      } catch (WorkflowNotFoundException notYet) {
        return false;
      }
    });
    return untyped;
  }

  private static FailoverWorkflow failoverHome(WorkflowClient client) {
    return client.newWorkflowStub(FailoverWorkflow.class, FailoverWorkflow.workflowId("web01"));
  }

  private static FailbackWorkflow failback(WorkflowClient client) {
    return client.newWorkflowStub(FailbackWorkflow.class, FailbackWorkflow.workflowId("web01"));
  }

  /**
   * The result of that run of protect-web01, read from its history: once a new run has the id,
   * getResult on the old one waits (time skipping runs the new one's cycles meanwhile).
   */
  private static String endOf(TestWorkflowEnvironment env, WorkflowClient client,
      ProtectVmWorkflow run) {
    var execution = WorkflowStub.fromTyped(run).getExecution();
    // The failover's notice is recorded before that run's next workflow task ends it.
    WorkflowTestSupport.awaitVirtual(env, () -> lastEvent(client, execution)
        .hasWorkflowExecutionCompletedEventAttributes());
    var last = lastEvent(client, execution);
    return last.getWorkflowExecutionCompletedEventAttributes().getResult().getPayloads(0)
        .getData().toStringUtf8();
  }

  private static io.temporal.api.history.v1.HistoryEvent lastEvent(WorkflowClient client,
      io.temporal.api.common.v1.WorkflowExecution execution) {
    var events = client.fetchHistory(execution.getWorkflowId(), execution.getRunId())
        .getEvents();
    return events.get(events.size() - 1);
  }

  /** "child-id POLICY" for each child the workflow started, from its history. */
  static List<String> childPolicies(WorkflowClient client, String workflowId) {
    return client.streamHistory(workflowId)
        .filter(HistoryEvent::hasStartChildWorkflowExecutionInitiatedEventAttributes)
        .map(HistoryEvent::getStartChildWorkflowExecutionInitiatedEventAttributes)
        .map(a -> a.getWorkflowId() + " " + a.getParentClosePolicy().name())
        .toList();
  }

  private static void replays(WorkflowClient client) {
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecution(
        client.fetchHistory(FailbackWorkflow.workflowId("web01")), FailbackWorkflowImpl.class))
        .as("failback-web01 replays").doesNotThrowAnyException();
  }

  @Test
  void aPlannedFailoverHomeCommittedThroughFailbackThenReprotectedAsItStarted(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = awayFromHome(env);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow away = protectedBackHome(env, client);
    WorkflowStub untyped = failingBack(env, client, Map.of("vm", "web01", "reprotect", true));

    FailbackStatus running = failback(client).status();
    assertThat(running.state()).isEqualTo(FailbackState.FAILING_OVER);
    assertThat(running.homeSite()).isEqualTo("primary");
    assertThat(running.fromSite()).isEqualTo("secondary");
    assertThat(running.steps()).anyMatch(s -> s.contains("failover-web01 started"));
    FailoverStatus home = failoverHome(client).status();
    assertThat(home.type()).isEqualTo(FailoverType.PLANNED);
    assertThat(home.sourceSite()).isEqualTo("secondary");
    assertThat(home.targetSite()).isEqualTo("primary");
    assertThat(WorkflowStub.fromTyped(failoverHome(client)).describe().getParentExecution()
        .getWorkflowId()).isEqualTo("failback-web01");
    assertThat(away.status().state()).isEqualTo(ProtectionState.FAILED_OVER);
    verify(agents, never()).promoteReplica(any());
    // what the Web UI shows on the two pages
    WorkflowTestSupport.awaitVirtual(env, () -> WorkflowTestSupport.currentDetails(client,
        "failback-web01").contains("- Failover: failover-web01 AWAITING_COMMIT at rp-"));
    assertThat(WorkflowTestSupport.currentDetails(client, "failback-web01"))
        .startsWith("**FAILING_OVER**\n").contains("- Home: secondary → primary\n")
        .contains("send 'commit' or 'cancel' here or there");
    assertThat(WorkflowTestSupport.currentDetails(client, "failover-web01"))
        .startsWith("**AWAITING_COMMIT**\n").contains("- Failover: PLANNED, secondary → primary");
    assertThat(WorkflowTestSupport.staticSummary(client, "failover-web01"))
        .isEqualTo("Planned failover of web01 to primary (failback)");

    // the operator answers Failback; it passes the commit on
    untyped.signal("commit", Map.of("reason", "home again"));
    FailbackStatus end = untyped.getResult(FailbackStatus.class);
    assertThat(end.state()).isEqualTo(FailbackState.COMPLETED);
    assertThat(end.error()).isNull();
    assertThat(end.failover().state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.reprotect().state()).isEqualTo(ReprotectState.PROTECTED);
    assertThat(end.reprotect().mode()).isEqualTo(ReverseMode.CHANGED_RANGES);
    assertThat(end.reprotect().sourceSite()).isEqualTo("primary");
    assertThat(end.reprotect().targetSite()).isEqualTo("secondary");
    assertThat(end.steps()).anyMatch(s -> s.contains("'commit' passed on to failover-web01"));
    assertThat(WorkflowTestSupport.currentDetails(client, "failback-web01"))
        .startsWith("**COMPLETED**\n").contains("- Last: ");
    assertThat(WorkflowTestSupport.staticSummary(client, "reprotect-web01"))
        .isEqualTo("Reprotect web01: reverse replication, policy default (failback)");
    assertThat(WorkflowTestSupport.currentDetails(client, "reprotect-web01"))
        .startsWith("**PROTECTED**\n").contains("- Direction: primary (active) → secondary\n")
        .contains("- Mode: CHANGED_RANGES\n");
    assertThat(WorkflowTestSupport.staticSummary(client, "protect-web01"))
        .isEqualTo("Protect web01: primary → secondary, policy default");
    assertThat(end.steps()).anyMatch(s -> s.contains("web01 runs on primary and is protected to "
        + "secondary again (CHANGED_RANGES"));

    InOrder order = inOrder(agents);
    order.verify(agents).homeOf(REVERSE);
    order.verify(agents).powerOff("secondary", "web01");
    order.verify(agents).replicateDelta(argThat(r -> r != null && r.plan().equals(REVERSE)));
    order.verify(agents).fenceVm("secondary", "web01");
    order.verify(agents).startReplica(eq("primary"), eq("web01"), anyLong(), anyString());
    order.verify(agents).promoteReplica(REVERSE);
    order.verify(agents).planReprotect("web01");
    order.verify(agents).reverseOldSource("secondary", "web01", "primary");
    order.verify(agents).sendChangedRanges(eq(PLAN), eq("disk0"), any());
    order.verify(agents).completeInitialReplication(PLAN);
    assertThat(endOf(env, client, away)).as("the protection back home ended with the commit")
        .contains("\"state\":\"FAILED_OVER\"");

    // Its children outlive it: terminating a Failback halfway must not kill a failover whose
    // source is shut down and fenced (only failover-web01 can commit or undo that), nor a
    // reverse replication. The test server records the policy but does not apply it.
    assertThat(childPolicies(client, FailbackWorkflow.workflowId("web01"))).containsExactly(
        "failover-web01 PARENT_CLOSE_POLICY_ABANDON",
        "reprotect-web01 PARENT_CLOSE_POLICY_ABANDON");

    // protected as it started: primary -> secondary
    ProtectVmWorkflow asItStarted = client.newWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId("web01"));
    WorkflowTestSupport.awaitVirtual(env,
        () -> asItStarted.status().state() == ProtectionState.PROTECTED);
    assertThat(asItStarted.status().sourceSite()).isEqualTo("primary");
    assertThat(asItStarted.status().targetSite()).isEqualTo("secondary");
    replays(client);
  }

  @Test
  void aCancelPassedOnLeavesTheVmAwayAndProtectedAndDoesNotReprotect(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = awayFromHome(env);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow away = protectedBackHome(env, client);
    WorkflowStub untyped = failingBack(env, client, Map.of("vm", "web01"));

    failback(client).cancel(null);
    FailbackStatus end = untyped.getResult(FailbackStatus.class);
    assertThat(end.state()).isEqualTo(FailbackState.CANCELLED);
    assertThat(end.failover().state()).isEqualTo(FailoverState.CANCELLED);
    assertThat(end.reprotect()).isNull();
    assertThat(end.steps()).anyMatch(s -> s.contains("'cancel' passed on to failover-web01"));
    assertThat(end.steps()).anyMatch(s -> s.contains("the failover home ended CANCELLED: web01 "
        + "stays on secondary"));
    InOrder order = inOrder(agents);
    order.verify(agents).stopReplica("primary", "web01");
    order.verify(agents).unfenceVm("secondary", "web01");
    order.verify(agents).powerOn("secondary", "web01");
    verify(agents, never()).promoteReplica(any());
    verify(agents, never()).planReprotect(any());
    assertThatCode(() -> client.newUntypedWorkflowStub("reprotect-web01").describe())
        .isInstanceOf(WorkflowNotFoundException.class);

    // still away, still protected back home, without a resync
    WorkflowTestSupport.awaitVirtual(env, () -> away.status().state() == ProtectionState.PROTECTED);
    env.sleep(Duration.ofSeconds(61));
    assertThat(away.status().state()).isEqualTo(ProtectionState.PROTECTED);
    assertThat(away.status().resyncReason()).isNull();
    assertThat(away.status().sourceSite()).isEqualTo("secondary");
    replays(client);
  }

  @Test
  void reprotectFalseEndsWithTheVmHomeAndUnprotected(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = awayFromHome(env);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow away = protectedBackHome(env, client);
    WorkflowStub untyped = failingBack(env, client, Map.of("vm", "web01", "reprotect", false));

    failback(client).commit(null);
    FailbackStatus end = untyped.getResult(FailbackStatus.class);
    assertThat(end.state()).isEqualTo(FailbackState.COMPLETED);
    assertThat(end.failover().state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.reprotect()).isNull();
    assertThat(end.steps()).anyMatch(s -> s.contains("web01 runs on primary again; not "
        + "reprotected, as asked"));
    verify(agents).promoteReplica(REVERSE);
    verify(agents, never()).planReprotect(any());
    verify(agents, never()).reverseOldSource(any(), any(), any());
    assertThat(endOf(env, client, away)).contains("\"state\":\"FAILED_OVER\"");
    replays(client);
  }

  @Test
  void aVmAtHomeHasNothingToFailBackAndFailsAtOnce(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    AtomicReference<ProtectionPlan> direction =
        WorkflowTestSupport.followTheVm(agents, PLAN, new AtomicReference<>("FAILED_OVER"));
    WorkflowTestSupport.start(env, agents);

    WorkflowStub atHome = client.newUntypedWorkflowStub("Failback", WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailbackWorkflow.workflowId("web01")).build());
    atHome.start(new FailbackInput("web01", null));
    Throwable failure = catchThrowable(() -> atHome.getResult(FailbackStatus.class));
    assertThat(failure).isInstanceOf(WorkflowFailedException.class);
    ApplicationFailure cause = (ApplicationFailure) failure.getCause();
    assertThat(cause.getType()).isEqualTo(FailureTypes.NOTHING_TO_FAIL_BACK);
    assertThat(cause.getOriginalMessage()).isEqualTo("VM web01 already runs on its home site "
        + "primary: nothing to fail back");
    FailbackStatus failed = failback(client).status();
    assertThat(failed.state()).isEqualTo(FailbackState.FAILED);
    assertThat(failed.error()).contains("nothing to fail back");
    assertThatCode(() -> WorkflowStub.fromTyped(failoverHome(client)).describe())
        .isInstanceOf(WorkflowNotFoundException.class);
    verify(agents, never()).powerOff(any(), any());

    // away, but replicating elsewhere than home: Failback only goes home over that link
    direction.set(REVERSE);
    doReturn("tertiary").when(agents).homeOf(REVERSE);
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failback", Map.of("vm", "web01")))
        .contains("not to its home site tertiary");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failback", Map.of()))
        .contains("field 'vm' is required");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Failback",
        Map.of("vm", "web01", "reprotect", "maybe"))).contains("reprotect");
  }

  /** Failback travels over the protection Reprotect builds: it waits for Reprotect to end. */
  @Test
  void failbackWhileReprotectRunsIsRefusedNamingIt(TestWorkflowEnvironment env,
      WorkflowClient client) throws InterruptedException {
    AgentActivities agents = awayFromHome(env);
    CountDownLatch sending = new CountDownLatch(1);
    doAnswer(inv -> {
      sending.await(30, TimeUnit.SECONDS);
      return new SeedResult(12, 1_000_000);
    }).when(agents).sendChangedRanges(any(), anyString(), any());
    WorkflowTestSupport.start(env, agents);
    ReprotectWorkflow reprotect = client.newWorkflowStub(ReprotectWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ReprotectWorkflow.workflowId("web01")).build());
    WorkflowClient.start(reprotect::reprotect, new ReprotectInput("web01", false, null));
    WorkflowTestSupport.awaitVirtual(env,
        () -> reprotect.status().state() == ReprotectState.SENDING_CHANGES);

    // started, then awaited in small steps: the blocked copy must not time out meanwhile
    FailbackWorkflow refused = client.newWorkflowStub(FailbackWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailbackWorkflow.workflowId("web01")).build());
    WorkflowClient.start(refused::failback, new FailbackInput("web01", true));
    WorkflowTestSupport.awaitVirtual(env, () -> refused.status().state() != FailbackState.VALIDATING);
    Throwable failure = catchThrowable(() ->
        WorkflowStub.fromTyped(refused).getResult(FailbackStatus.class));
    assertThat(failure).isInstanceOf(WorkflowFailedException.class);
    assertThat(failure.getCause()).isInstanceOf(ApplicationFailure.class);
    ApplicationFailure cause = (ApplicationFailure) failure.getCause();
    assertThat(cause.getType()).isEqualTo(FailureTypes.VM_BUSY);
    assertThat(cause.getOriginalMessage()).isEqualTo("Failback of web01 refused: reprotect-web01 "
        + "is running; fail back once it has ended: the failback travels over the protection it "
        + "builds");
    assertThat(failback(client).status().state()).isEqualTo(FailbackState.FAILED);
    assertThatCode(() -> WorkflowStub.fromTyped(failoverHome(client)).describe())
        .isInstanceOf(WorkflowNotFoundException.class);
    verify(agents, never()).powerOff(any(), any());

    sending.countDown();
    assertThat(WorkflowStub.fromTyped(reprotect).getResult(ReprotectStatus.class).state())
        .isEqualTo(ReprotectState.PROTECTED);
    replays(client);
  }
}
