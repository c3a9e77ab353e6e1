package io.siterecovery.workflows;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.never;
import static org.mockito.Mockito.times;
import static org.mockito.Mockito.verify;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.DeltaRequest;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.protection.PolicyChange;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import java.time.Duration;
import java.time.Instant;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.mockito.ArgumentCaptor;

/**
 * Policies, app-consistent points and resync triggers, in virtual time from noon UTC. In the
 * future: the status query reads the later of the workflow's clock and the wall clock.
 */
class ResyncAndPolicyWorkflowTest {
  private static final Instant NOON = Instant.parse("2036-11-23T12:00:00Z");

  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension(NOON);

  private static ProtectVmWorkflow protect(WorkflowClient client, String policy) {
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", policy));
    return wf;
  }

  private static PolicySettings withAppConsistency(Duration every) {
    PolicySettings p = WorkflowTestSupport.policy("default", Duration.ofSeconds(30));
    return new PolicySettings(p.name(), p.copyFrequency(), p.rpoThreshold(), p.retention(), every,
        null, p.resyncWindow(), true, 8.0, p.maxTestDuration());
  }

  @Test
  void appConsistentPointsFollowThePolicyAndTransferSettingsReachTheAgent(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    WorkflowTestSupport.POLICIES.put("default", withAppConsistency(Duration.ofMinutes(1)));
    protect(client, null);
    env.sleep(Duration.ofSeconds(155));

    ArgumentCaptor<DeltaRequest> requests = ArgumentCaptor.forClass(DeltaRequest.class);
    verify(agents, times(5)).replicateDelta(requests.capture());
    assertThat(requests.getAllValues()).extracting(DeltaRequest::quiesce)
        .containsExactly(true, false, true, false, true);
    assertThat(requests.getValue().retentionSeconds()).isEqualTo(24 * 3600);
    assertThat(requests.getValue().transfer().compress()).isTrue();
    assertThat(requests.getValue().transfer().bandwidthMBps()).isEqualTo(8.0);
  }

  @Test
  void setPolicyTakesEffectAtTheNextCycle(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    WorkflowTestSupport.POLICIES.put("hourly", WorkflowTestSupport.policy("hourly",
        Duration.ofHours(1)));
    ProtectVmWorkflow wf = protect(client, "default");
    env.sleep(Duration.ofSeconds(35));
    verify(agents, times(1)).replicateDelta(any());

    wf.setPolicy(new PolicyChange("hourly"));
    env.sleep(Duration.ofSeconds(30));
    assertThat(wf.status().policy()).isEqualTo("hourly");
    verify(agents, times(2)).replicateDelta(any());
    env.sleep(Duration.ofMinutes(59));
    verify(agents, times(2)).replicateDelta(any());
    env.sleep(Duration.ofMinutes(2));
    verify(agents, times(3)).replicateDelta(any());
  }

  @Test
  void initialReplicationWaitsForThePolicysStartTime(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    WorkflowTestSupport.start(env, agents);
    PolicySettings p = WorkflowTestSupport.policy("tonight", Duration.ofSeconds(30));
    WorkflowTestSupport.POLICIES.put("tonight", new PolicySettings(p.name(), p.copyFrequency(),
        p.rpoThreshold(), p.retention(), null, NOON.plus(Duration.ofHours(2)), p.resyncWindow(),
        false, null, p.maxTestDuration()));
    ProtectVmWorkflow wf = protect(client, "tonight");
    env.sleep(Duration.ofMinutes(119));
    verify(agents, never()).copyDisk(any());
    assertThat(wf.status().notes()).anyMatch(n -> n.contains("scheduled for 2036-11-23T14:00:00Z"));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    verify(agents, times(2)).copyDisk(any());
  }

  @Test
  void resyncSignalRunsAtOnceAndDropsOlderPoints(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, null);
    env.sleep(Duration.ofSeconds(65));
    assertThat(wf.status().recoveryPoints()).hasSize(3);

    wf.resync(new OperatorRequest("network outage"));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().notes().stream()
        .anyMatch(n -> n.contains("resync at generation")));
    assertThat(wf.status().state()).isEqualTo(ProtectionState.PROTECTED);
    // The resync's own generation is no point; the cycle right after it is the first one.
    assertThat(wf.status().recoveryPoints()).hasSize(2);
    assertThat(wf.status().rpoSeconds()).isLessThan(5);
    assertThat(wf.status().notes()).anyMatch(n -> n.contains("6 of 200 blocks differed")
        && n.contains("recovery points older than the resync were dropped"));
    verify(agents, times(2)).resyncDisk(any());
  }

  @Test
  void logsAtHalfTheDiskSizeScheduleAResyncForTheOffHoursWindow(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    SourceHealth backlog = new SourceHealth(3L << 29, 3L << 30, null);
    org.mockito.Mockito.doThrow(ApplicationFailure.newFailure("link down", "PEER_UNREACHABLE"))
        .when(agents).replicateDelta(any());
    org.mockito.Mockito.doReturn(backlog).when(agents).sourceHealth(any());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, null);

    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.RESYNC_PENDING);
    assertThat(wf.status().resyncPendingUntil()).isEqualTo(Instant.parse("2036-11-23T22:00:00Z"));
    assertThat(wf.status().resyncReason()).contains("50 %");
    assertThat(wf.status().healthReasons()).anyMatch(r -> r.contains("resync pending until"));

    org.mockito.Mockito.doAnswer(inv -> WorkflowTestSupport.cycle(env, 9))
        .when(agents).replicateDelta(any());
    org.mockito.Mockito.doReturn(WorkflowTestSupport.HEALTHY_SOURCE).when(agents).sourceHealth(any());
    env.sleep(Duration.between(Instant.ofEpochMilli(env.currentTimeMillis()),
        Instant.parse("2036-11-23T21:59:00Z")));
    verify(agents, never()).beginResync(any());
    env.sleep(Duration.ofMinutes(2));
    verify(agents).beginResync(any());
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
  }

  @Test
  void aCorruptLogSchedulesAResyncInsteadOfRetrying(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    org.mockito.Mockito.doThrow(ApplicationFailure.newNonRetryableFailure(
        "sealed log of web01/disk0 generation 3 is corrupt", "LOG_CORRUPT"))
        .when(agents).replicateDelta(any());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client, null);
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.RESYNC_PENDING);
    assertThat(wf.status().resyncReason()).contains("generation 3 is corrupt");
    env.sleep(Duration.ofHours(1));
    verify(agents, times(1)).replicateDelta(any());
  }

}
