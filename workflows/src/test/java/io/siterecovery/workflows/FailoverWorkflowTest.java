package io.siterecovery.workflows;

import static io.siterecovery.workflows.WorkflowTestSupport.PLAN;
import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.inOrder;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.verify;
import static org.mockito.Mockito.when;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failover.CommitPolicy;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import java.time.Duration;
import java.time.Instant;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.mockito.InOrder;

class FailoverWorkflowTest {
  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  private static ProtectVmWorkflow protect(TestWorkflowEnvironment env, WorkflowClient client) {
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", null));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    return wf;
  }

  private static FailoverWorkflow failover(TestWorkflowEnvironment env, WorkflowClient client) {
    return failoverWith(env, client, null);
  }


  @Test
  void plannedFailoverShutsDownSynchronisesStartsReplicaAndCommits(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow fo = failover(env, client);
    assertThat(protection.status().state()).isEqualTo(ProtectionState.FAILED_OVER);
    verify(agents, never()).commitFailover(any());

    fo.commit(new OperatorRequest("go"));
    FailoverStatus end = WorkflowStub.fromTyped(fo).getResult(FailoverStatus.class);
    assertThat(end.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.recoveryPoint()).isNotNull();
    InOrder order = inOrder(agents);
    order.verify(agents).powerOff("primary", "web01");
    order.verify(agents).replicateDelta(any());
    order.verify(agents).powerOn("secondary", "web01");
    order.verify(agents).commitFailover(PLAN);
    ProtectionStatus protectionEnd =
        WorkflowStub.fromTyped(protection).getResult(ProtectionStatus.class);
    assertThat(protectionEnd.state()).isEqualTo(ProtectionState.FAILED_OVER);
  }

  @Test
  void cancelRestartsTheSourceAndProtectionResumes(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow fo = failover(env, client);

    fo.cancel(new OperatorRequest("drill over"));
    FailoverStatus end = WorkflowStub.fromTyped(fo).getResult(FailoverStatus.class);
    assertThat(end.state()).isEqualTo(FailoverState.CANCELLED);
    verify(agents).powerOff("secondary", "web01");
    verify(agents).powerOn("primary", "web01");
    verify(agents, never()).commitFailover(any());
    // The replica ran, so it no longer continues the source's logs: protection resyncs first.
    WorkflowTestSupport.awaitVirtual(env, () -> protection.status().state() == ProtectionState.PROTECTED
        && protection.status().resyncReason() == null);
    verify(agents).beginResync(any());
    verify(agents, org.mockito.Mockito.times(2)).resyncDisk(any());
    long cycles = protection.status().deltaCycles();
    env.sleep(java.time.Duration.ofSeconds(61));
    assertThat(protection.status().deltaCycles()).isGreaterThan(cycles);
  }

  @Test
  void replicaBehindTheSourceRollsBackAndFails(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    org.mockito.Mockito.doReturn(new ReplicationCycle(7, 6, Instant.now(), 1, 1, false, null,
        java.util.List.of(), WorkflowTestSupport.HEALTHY_SOURCE)).when(agents).replicateDelta(any());

    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover, new FailoverInput("web01", FailoverType.PLANNED, null));
    Throwable failure = org.assertj.core.api.Assertions.catchThrowable(
        () -> WorkflowStub.fromTyped(fo).getResult(FailoverStatus.class));
    assertThat(failure).rootCause()
        .hasMessageContaining("replica applied generation 6 but the source sealed 7");
    verify(agents).powerOn("primary", "web01");
    verify(agents, never()).powerOn("secondary", "web01");
    WorkflowTestSupport.awaitVirtual(env, () -> protection.status().state() == ProtectionState.PROTECTED);
  }

  @Test
  void unplannedFailoverRollsTheReplicaToTheLatestAppConsistentPointWithoutTouchingTheSource(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    WorkflowTestSupport.POLICIES.put("default", new io.siterecovery.activities.PolicySettings(
        "default", java.time.Duration.ofSeconds(30), java.time.Duration.ofMinutes(2),
        java.time.Duration.ofHours(24), java.time.Duration.ofMinutes(1), null,
        WorkflowTestSupport.NIGHTS, false, null, null));
    ProtectVmWorkflow protection = protect(env, client);
    env.sleep(java.time.Duration.ofSeconds(125));
    assertThat(protection.status().recoveryPoints()).extracting(p -> p.id() + ":" + p.appConsistent())
        .containsExactly("rp-1:false", "rp-2:true", "rp-3:false", "rp-4:true", "rp-5:false");

    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover,
        new FailoverInput("web01", FailoverType.UNPLANNED, "LATEST_APP_CONSISTENT"));
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().state() == FailoverState.AWAITING_COMMIT);
    assertThat(fo.status().recoveryPoint().id()).isEqualTo("rp-4");
    assertThat(fo.status().recoveryPoint().appConsistent()).isTrue();
    verify(agents).rollbackReplica("secondary", "web01", 4);
    verify(agents, never()).powerOff(org.mockito.ArgumentMatchers.eq("primary"), any());

    fo.commit(new OperatorRequest(null));
    assertThat(WorkflowStub.fromTyped(fo).getResult(FailoverStatus.class).state())
        .isEqualTo(FailoverState.COMMITTED);
    verify(agents).commitFailover(PLAN);
  }

  @Test
  void aPointThatIsNotRetainedFailsTheFailoverAndProtectionCarriesOn(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover, new FailoverInput("web01", FailoverType.UNPLANNED, "rp-99"));
    Throwable failure = org.assertj.core.api.Assertions.catchThrowable(
        () -> WorkflowStub.fromTyped(fo).getResult(FailoverStatus.class));
    assertThat(failure).rootCause().hasMessageContaining("rp-99 is not retained");
    verify(agents, never()).powerOn(any(), any());
    WorkflowTestSupport.awaitVirtual(env, () -> protection.status().state() == ProtectionState.PROTECTED);
    assertThat(protection.status().resyncReason()).isNull();
  }

  @Test
  void plannedFailoverRefusesAReplicaThatNeedsAResync(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    org.mockito.Mockito.doReturn(new io.siterecovery.activities.AgentActivityRecords.SourceHealth(
        0, 1L << 30, "disk0 image changed while the agent was down"))
        .when(agents).sourceHealth(any());
    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover, new FailoverInput("web01", FailoverType.PLANNED, null));
    Throwable failure = org.assertj.core.api.Assertions.catchThrowable(
        () -> WorkflowStub.fromTyped(fo).getResult(FailoverStatus.class));
    assertThat(failure).rootCause().hasMessageContaining("needs a resync");
    verify(agents, never()).powerOff(any(), any());
    WorkflowTestSupport.awaitVirtual(env, () -> protection.status().state() == ProtectionState.PROTECTED);
  }

  private static FailoverWorkflow failoverWith(TestWorkflowEnvironment env, WorkflowClient client,
      CommitPolicy policy) {
    FailoverWorkflow wf = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::failover,
        new FailoverInput("web01", FailoverType.PLANNED, "LATEST", policy, null));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == FailoverState.AWAITING_COMMIT);
    return wf;
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
    WorkflowTestSupport.awaitVirtual(env, () -> fo.status().state() == FailoverState.AWAITING_COMMIT);
    FailoverStatus waiting = fo.status();
    assertThat(waiting.commitPolicy().action()).isEqualTo(CommitPolicy.Action.COMMIT);
    assertThat(Duration.between(Instant.ofEpochMilli(env.currentTimeMillis()),
        waiting.decidesItselfAt())).isBetween(Duration.ofMinutes(59), Duration.ofHours(1));

    env.sleep(Duration.ofMinutes(59));
    assertThat(fo.status().state()).as("not before its time").isEqualTo(FailoverState.AWAITING_COMMIT);
    verify(agents, never()).commitFailover(any());
    env.sleep(Duration.ofMinutes(2));
    FailoverStatus end = WorkflowStub.fromTyped(fo).getResult(FailoverStatus.class);
    assertThat(end.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(end.decidesItselfAt()).isNull();
    assertThat(end.steps()).anyMatch(s -> s.contains("the commit policy commits"));
    verify(agents).commitFailover(PLAN);
  }

  @Test
  void aCommitPolicyCancelsByItselfAndASignalBeforeItWins(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow protection = protect(env, client);
    FailoverWorkflow fo = failoverWith(env, client,
        new CommitPolicy(CommitPolicy.Action.CANCEL, Duration.ofMinutes(30)));
    env.sleep(Duration.ofMinutes(31));
    FailoverStatus cancelled = WorkflowStub.fromTyped(fo).getResult(FailoverStatus.class);
    assertThat(cancelled.state()).isEqualTo(FailoverState.CANCELLED);
    assertThat(cancelled.steps()).anyMatch(s -> s.contains("the commit policy cancels"));
    verify(agents).powerOn("primary", "web01");
    WorkflowTestSupport.awaitVirtual(env, () -> protection.status().state() == ProtectionState.PROTECTED
        && protection.status().resyncReason() == null);

    // a second failover: the operator's commit before the policy's time is what happens
    FailoverWorkflow second = failoverWith(env, client,
        new CommitPolicy(CommitPolicy.Action.CANCEL, Duration.ofMinutes(30)));
    env.sleep(Duration.ofMinutes(10));
    second.commit(new OperatorRequest("checked"));
    FailoverStatus committed = WorkflowStub.fromTyped(second).getResult(FailoverStatus.class);
    assertThat(committed.state()).isEqualTo(FailoverState.COMMITTED);
    assertThat(committed.steps()).noneMatch(s -> s.contains("the commit policy cancels"));
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
}
