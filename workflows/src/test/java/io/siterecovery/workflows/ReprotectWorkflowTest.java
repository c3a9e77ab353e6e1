package io.siterecovery.workflows;

import static io.siterecovery.workflows.WorkflowTestSupport.PLAN;
import static io.siterecovery.workflows.WorkflowTestSupport.REVERSE;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.catchThrowable;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.ArgumentMatchers.argThat;
import static org.mockito.ArgumentMatchers.eq;
import static org.mockito.Mockito.atLeast;
import static org.mockito.Mockito.doReturn;
import static org.mockito.Mockito.doThrow;
import static org.mockito.Mockito.inOrder;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.times;
import static org.mockito.Mockito.verify;
import static org.mockito.Mockito.when;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.ReverseOutcome;
import io.siterecovery.activities.AgentActivityRecords.Salvaged;
import io.siterecovery.activities.AgentActivityRecords.TransferSettings;
import io.siterecovery.activities.FailureTypes;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failover.FailoverInput;
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
import io.siterecovery.workflows.reprotect.ReprotectWorkflowImpl;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowExecutionDescription;
import io.temporal.client.WorkflowFailedException;
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
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.mockito.InOrder;

/**
 * Reprotect after a committed failover: the old copy becomes the replica (changed ranges, a
 * checksum resync, or a full copy when it is gone), then protect-web01 runs the other way.
 */
@Timeout(value = 60, unit = TimeUnit.SECONDS, threadMode = Timeout.ThreadMode.SEPARATE_THREAD)
class ReprotectWorkflowTest {
  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  private static final Salvaged SALVAGED = new Salvaged("salvage-1", "primary",
      "vms/web01/salvage/salvage-1", 3 * 65536, 5, 3, Instant.parse("2026-01-01T10:00:00Z"),
      Instant.parse("2026-01-01T10:02:00Z"), List.of("disk0:0+65536", "disk0:1048576+65536",
          "disk1:4096+65536"));

  private static ReprotectWorkflow start(WorkflowClient client, ReprotectInput input) {
    ReprotectWorkflow wf = client.newWorkflowStub(ReprotectWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ReprotectWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::reprotect, input);
    return wf;
  }

  private static ReprotectStatus result(ReprotectWorkflow wf) {
    return WorkflowStub.fromTyped(wf).getResult(ReprotectStatus.class);
  }

  private static ProtectVmWorkflow protection(WorkflowClient client) {
    return client.newWorkflowStub(ProtectVmWorkflow.class, ProtectVmWorkflow.workflowId("web01"));
  }

  private static ProtectionPlan deltaPlan(org.mockito.invocation.InvocationOnMock inv) {
    return inv.getArgument(0, io.siterecovery.activities.AgentActivityRecords.DeltaRequest.class)
        .plan();
  }

  private static void replays(WorkflowClient client) {
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecution(
        client.fetchHistory(ReprotectWorkflow.workflowId("web01")), ReprotectWorkflowImpl.class))
        .as("reprotect-web01 replays").doesNotThrowAnyException();
  }

  @Test
  void afterAPlannedFailoverOnlyTheChangedRangesTravelAndProtectionRunsBackToTheOldSite(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    AtomicReference<ProtectionPlan> direction =
        WorkflowTestSupport.followTheVm(agents, PLAN, new AtomicReference<>("FAILED_OVER"));
    WorkflowTestSupport.start(env, agents);

    // the lifecycle so far: protected primary -> secondary, failed over, committed
    ProtectVmWorkflow first = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(first::protect, new ProtectVmInput("web01", null));
    WorkflowTestSupport.awaitVirtual(env, () -> first.status().state() == ProtectionState.PROTECTED);
    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover, new FailoverInput("web01", FailoverType.PLANNED, null));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().state() == FailoverState.AWAITING_COMMIT);
    fo.commit(new OperatorRequest(null));
    assertThat(WorkflowStub.fromTyped(fo).getResult(FailoverStatus.class).state())
        .isEqualTo(FailoverState.COMMITTED);
    assertThat(WorkflowStub.fromTyped(first).getResult(ProtectionStatus.class).state())
        .isEqualTo(ProtectionState.FAILED_OVER);
    assertThat(direction.get()).isEqualTo(REVERSE);

    // as an operator starts it: one JSON object
    WorkflowStub untyped = client.newUntypedWorkflowStub("Reprotect", WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ReprotectWorkflow.workflowId("web01")).build());
    untyped.start(Map.of("vm", "web01", "shutDownOldSource", false));
    ReprotectStatus end = untyped.getResult(ReprotectStatus.class);

    assertThat(end.state()).isEqualTo(ReprotectState.PROTECTED);
    assertThat(end.mode()).isEqualTo(io.siterecovery.workflows.reprotect.ReverseMode.CHANGED_RANGES);
    assertThat(end.sourceSite()).isEqualTo("secondary");
    assertThat(end.targetSite()).isEqualTo("primary");
    assertThat(end.salvaged()).isNull();
    assertThat(end.bytesChanged()).isEqualTo(3 << 20);
    assertThat(end.bytesSent()).isEqualTo(2 * 1_000_000 + 4096);
    assertThat(end.error()).isNull();
    assertThat(end.steps()).anyMatch(s -> s.contains("sent the 24 ranges changed since the "
        + "failover: 2000000 bytes of 3145728 changed"));
    assertThat(end.steps()).anyMatch(s -> s.contains("protect-web01 started: web01 is protected "
        + "from secondary to primary"));

    InOrder order = inOrder(agents);
    order.verify(agents).planReprotect("web01");
    order.verify(agents).reverseOldSource("primary", "web01", "secondary");
    order.verify(agents).enableReplication(REVERSE);
    order.verify(agents).sendChangedRanges(REVERSE, "disk0", TransferSettings.DEFAULT);
    order.verify(agents).sendChangedRanges(REVERSE, "disk1", TransferSettings.DEFAULT);
    order.verify(agents).replicateDelta(argThat(r -> r != null && r.plan().equals(REVERSE)));
    order.verify(agents).completeInitialReplication(REVERSE);
    verify(agents, times(1)).powerOff(any(), any()); // the failover's, none by Reprotect
    verify(agents, never()).beginResync(any());
    verify(agents, never()).copyDisk(any());

    // protect-web01 is a new run, in the new direction, and outlives Reprotect
    ProtectVmWorkflow reverse = protection(client);
    WorkflowTestSupport.awaitVirtual(env, () -> reverse.status().state() == ProtectionState.PROTECTED);
    order.verify(agents).planProtection("web01");
    order.verify(agents).enableReplication(REVERSE);
    ProtectionStatus protecting = reverse.status();
    assertThat(protecting.sourceSite()).isEqualTo("secondary");
    assertThat(protecting.targetSite()).isEqualTo("primary");
    assertThat(FailbackWorkflowTest.childPolicies(client, "reprotect-web01"))
        .containsExactly("protect-web01 PARENT_CLOSE_POLICY_ABANDON");
    WorkflowExecutionDescription child = WorkflowStub.fromTyped(reverse).describe();
    assertThat(child.getParentExecution().getWorkflowId()).isEqualTo("reprotect-web01");
    env.sleep(Duration.ofSeconds(65));
    assertThat(WorkflowStub.fromTyped(reverse).describe().getStatus())
        .isEqualTo(WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING);
    assertThat(reverse.status().deltaCycles()).isGreaterThanOrEqualTo(2);
    verify(agents, atLeast(3)).replicateDelta(argThat(r -> r != null && r.plan().equals(REVERSE)));
    replays(client);
  }

  @Test
  void afterAnUnplannedFailoverTheOldDisksAreComparedAndWhatTheyHeldIsSalvaged(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.followTheVm(agents, REVERSE, new AtomicReference<>("FAILED_OVER"));
    doReturn(new ReverseOutcome(SALVAGED, "the old source wrote after rp-4; those writes never "
        + "reached the replica")).when(agents).reverseOldSource("primary", "web01", "secondary");
    WorkflowTestSupport.start(env, agents);

    ReprotectStatus end = result(start(client, new ReprotectInput("web01", null, null)));
    assertThat(end.state()).isEqualTo(ReprotectState.PROTECTED);
    assertThat(end.mode()).isEqualTo(io.siterecovery.workflows.reprotect.ReverseMode.CHECKSUM_RESYNC);
    assertThat(end.salvaged()).isEqualTo(SALVAGED);
    assertThat(end.bytesSent()).isEqualTo(2 * 3 * 65536 + 4096);
    assertThat(end.steps()).anyMatch(s -> s.contains("SALVAGED: the old copy held 196608 bytes "
        + "in 3 ranges that never reached the replica") && s.contains("kept on primary as "
        + "salvage-1 (vms/web01/salvage/salvage-1) until you delete them"));
    assertThat(end.steps()).anyMatch(s -> s.contains("compared block by block: the old source "
        + "wrote after rp-4"));
    assertThat(end.steps()).anyMatch(s -> s.contains("6 of 200 blocks differed"));

    InOrder order = inOrder(agents);
    order.verify(agents).reverseOldSource("primary", "web01", "secondary");
    order.verify(agents).enableReplication(REVERSE);
    order.verify(agents).beginResync(REVERSE);
    order.verify(agents, times(2)).resyncDisk(argThat(r -> r != null && r.plan().equals(REVERSE)
        && r.progressWorkflowId().equals("reprotect-web01")));
    order.verify(agents).completeResync(REVERSE);
    order.verify(agents).replicateDelta(argThat(r -> r != null && r.plan().equals(REVERSE)));
    order.verify(agents).completeInitialReplication(REVERSE);
    verify(agents, never()).sendChangedRanges(any(), anyString(), any());
    verify(agents, never()).powerOff(any(), any());

    ProtectVmWorkflow reverse = protection(client);
    WorkflowTestSupport.awaitVirtual(env, () -> reverse.status().state() == ProtectionState.PROTECTED);
    assertThat(reverse.status().sourceSite()).isEqualTo("secondary");
    replays(client);
  }

  @Test
  void anOldCopyThatIsGoneIsCopiedInFullByProtectVm(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.followTheVm(agents, REVERSE, new AtomicReference<>("MISSING"));
    when(agents.enableReplication(any())).thenReturn(false); // nothing there to seed from
    WorkflowTestSupport.start(env, agents);

    ReprotectStatus end = result(start(client, new ReprotectInput("web01", false, null)));
    assertThat(end.state()).isEqualTo(ReprotectState.PROTECTED);
    assertThat(end.mode()).isEqualTo(io.siterecovery.workflows.reprotect.ReverseMode.FULL_COPY);
    assertThat(end.bytesSent()).isZero();
    assertThat(end.steps()).anyMatch(s -> s.contains("copies them in full"));
    verify(agents, never()).reverseOldSource(any(), any(), any());
    verify(agents, never()).sendChangedRanges(any(), anyString(), any());
    verify(agents, never()).beginResync(any());

    ProtectVmWorkflow reverse = protection(client);
    WorkflowTestSupport.awaitVirtual(env, () -> reverse.status().state() == ProtectionState.PROTECTED);
    assertThat(reverse.status().sourceSite()).isEqualTo("secondary");
    assertThat(reverse.status().targetSite()).isEqualTo("primary");
    // the initial copy is ProtectVm's, after Reprotect: both disks, to the old site
    verify(agents, times(2)).copyDisk(argThat(r -> r != null && r.plan().equals(REVERSE)));
    verify(agents).completeInitialReplication(REVERSE);
    replays(client);
  }

  @Test
  void anOldCopyStillRunningIsRefusedUnlessShutDownOldSourceIsAsked(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.followTheVm(agents, REVERSE, new AtomicReference<>("RUNNING"));
    WorkflowTestSupport.start(env, agents);

    ReprotectWorkflow refused = start(client, new ReprotectInput("web01", false, null));
    Throwable failure = catchThrowable(() -> result(refused));
    assertThat(failure).isInstanceOf(WorkflowFailedException.class);
    assertThat(failure.getCause()).isInstanceOf(ApplicationFailure.class);
    ApplicationFailure cause = (ApplicationFailure) failure.getCause();
    assertThat(cause.getType()).isEqualTo(FailureTypes.OLD_SOURCE_RUNNING);
    assertThat(cause.getOriginalMessage()).contains("VM web01 is running on primary")
        .contains("\"shutDownOldSource\":true");
    assertThat(refused.status().state()).isEqualTo(ReprotectState.FAILED);
    assertThat(refused.status().error()).contains("is running on primary");
    verify(agents, never()).powerOff(any(), any());
    verify(agents, never()).reverseOldSource(any(), any(), any());
    verify(agents, never()).enableReplication(any());

    // asked to: it shuts the old copy down first; what it wrote meanwhile is compared and saved
    doReturn(new ReverseOutcome(SALVAGED, "it ran after the failover"))
        .when(agents).reverseOldSource("primary", "web01", "secondary");
    ReprotectStatus end = result(start(client, new ReprotectInput("web01", true, null)));
    assertThat(end.state()).isEqualTo(ReprotectState.PROTECTED);
    assertThat(end.mode()).isEqualTo(io.siterecovery.workflows.reprotect.ReverseMode.CHECKSUM_RESYNC);
    assertThat(end.steps()).anyMatch(s -> s.contains("the old copy on primary was running: shut "
        + "down as asked"));
    InOrder order = inOrder(agents);
    order.verify(agents).powerOff("primary", "web01");
    order.verify(agents).reverseOldSource("primary", "web01", "secondary");
    order.verify(agents).beginResync(REVERSE);
    WorkflowTestSupport.awaitVirtual(env,
        () -> protection(client).status().state() == ProtectionState.PROTECTED);
    replays(client);
  }

  @Test
  void thePolicyIsCheckedFirstAndItsTransferSettingsApplyToTheReverseCopy(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.followTheVm(agents, REVERSE, new AtomicReference<>("FAILED_OVER"));
    WorkflowTestSupport.start(env, agents);
    WorkflowTestSupport.POLICIES.put("wan", new PolicySettings("wan", Duration.ofMinutes(5),
        Duration.ofMinutes(15), Duration.ofHours(24), null, null, WorkflowTestSupport.NIGHTS,
        true, 20.0, null));

    // an unknown policy fails at once, before the old site is touched
    ReprotectWorkflow unknown = start(client, new ReprotectInput("web01", null, "gold"));
    assertThat(catchThrowable(() -> result(unknown))).rootCause()
        .hasMessageContaining("unknown policy 'gold'");
    assertThat(unknown.status().state()).isEqualTo(ReprotectState.FAILED);
    verify(agents, never()).planReprotect(any());
    verify(agents, never()).reverseOldSource(any(), any(), any());

    ReprotectStatus end = result(start(client, new ReprotectInput("web01", null, "wan")));
    assertThat(end.state()).isEqualTo(ReprotectState.PROTECTED);
    TransferSettings wan = new TransferSettings(true, 20.0);
    verify(agents).sendChangedRanges(REVERSE, "disk0", wan);
    verify(agents).sendChangedRanges(REVERSE, "disk1", wan);
    verify(agents).replicateDelta(argThat(r -> r != null && r.plan().equals(REVERSE)
        && r.transfer().equals(wan)));
    WorkflowTestSupport.awaitVirtual(env,
        () -> protection(client).status().state() == ProtectionState.PROTECTED);
    assertThat(protection(client).status().policy()).isEqualTo("wan");
  }

  @Test
  void aVmThatWasNotFailedOverFailsAtOnceNamingTheProblem(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    doThrow(ApplicationFailure.newNonRetryableFailure("VM web01 has no committed failover "
        + "waiting for reverse replication (fail it over and commit first, or it is protected "
        + "already)", FailureTypes.NOT_FAILED_OVER)).when(agents).planReprotect("web01");
    WorkflowTestSupport.start(env, agents);

    ReprotectWorkflow wf = start(client, new ReprotectInput("web01", null, null));
    Throwable failure = catchThrowable(() -> result(wf));
    assertThat(failure).isInstanceOf(WorkflowFailedException.class).rootCause()
        .isInstanceOf(ApplicationFailure.class)
        .hasMessageContaining("VM web01 has no committed failover");
    assertThat(((ApplicationFailure) failure.getCause().getCause()).getType())
        .isEqualTo(FailureTypes.NOT_FAILED_OVER);
    verify(agents, times(1)).planReprotect("web01"); // not retried
    verify(agents, never()).reverseOldSource(any(), any(), any());
    verify(agents, never()).planProtection(any());
    ReprotectStatus failed = wf.status();
    assertThat(failed.state()).isEqualTo(ReprotectState.FAILED);
    assertThat(failed.error()).contains("no committed failover");

    assertThat(ProtectVmWorkflowTest.failureOf(client, "Reprotect", Map.of()))
        .contains("field 'vm' is required");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Reprotect",
        Map.of("vm", "web01", "shutDown", true))).contains("shutDown");
    assertThat(ProtectVmWorkflowTest.failureOf(client, "Reprotect",
        Map.of("vm", "../etc"))).contains("not a valid name");
  }

  /**
   * An uncommitted failover may still be cancelled, putting the VM back where Reprotect would
   * make the replica: Reprotect is refused, naming the failover, before it touches any site.
   */
  @Test
  void reprotectDuringAnUncommittedFailoverIsRefusedNamingIt(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.followTheVm(agents, PLAN, new AtomicReference<>("FAILED_OVER"));
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow first = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(first::protect, new ProtectVmInput("web01", null));
    WorkflowTestSupport.awaitVirtual(env, () -> first.status().state() == ProtectionState.PROTECTED);
    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover, new FailoverInput("web01", FailoverType.PLANNED, null));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().state() == FailoverState.AWAITING_COMMIT);

    ReprotectWorkflow wf = start(client, new ReprotectInput("web01", true, null));
    Throwable failure = catchThrowable(() -> result(wf));
    assertThat(failure).isInstanceOf(WorkflowFailedException.class);
    assertThat(failure.getCause()).isInstanceOf(ApplicationFailure.class);
    ApplicationFailure cause = (ApplicationFailure) failure.getCause();
    assertThat(cause.getType()).isEqualTo(FailureTypes.VM_BUSY);
    assertThat(cause.getOriginalMessage()).startsWith("Reprotect of web01 refused: "
        + "failover-web01 is running; commit it first");
    assertThat(wf.status().state()).isEqualTo(ReprotectState.FAILED);
    verify(agents, never()).planReprotect(any());
    verify(agents, never()).reverseOldSource(any(), any(), any());
    verify(agents, times(1)).powerOff(any(), any()); // the failover's, none by Reprotect

    assertThat(fo.status().state()).isEqualTo(FailoverState.AWAITING_COMMIT);
    fo.cancel(new OperatorRequest(null));
    assertThat(WorkflowStub.fromTyped(fo).getResult(FailoverStatus.class).state())
        .isEqualTo(FailoverState.CANCELLED);
    replays(client);
  }
}
