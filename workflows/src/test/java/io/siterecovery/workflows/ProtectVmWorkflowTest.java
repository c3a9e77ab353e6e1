package io.siterecovery.workflows;

import static io.siterecovery.workflows.WorkflowTestSupport.PLAN;
import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.atLeast;
import static org.mockito.Mockito.times;
import static org.mockito.Mockito.verify;
import static org.mockito.Mockito.when;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import java.time.Duration;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

class ProtectVmWorkflowTest {
  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  private static ProtectVmWorkflow startProtection(WorkflowClient client) {
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", "default"));
    return wf;
  }

  @Test
  void initialReplicationThenDeltaCyclesEveryThirtySeconds(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = startProtection(client);

    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    ProtectionStatus afterFinalize = wf.status();
    assertThat(afterFinalize.latestRecoveryPoint().generation()).isEqualTo(2);
    assertThat(afterFinalize.deltaCycles()).isEqualTo(1);
    verify(agents, times(2)).copyDisk(any());
    verify(agents).completeInitialReplication(PLAN);

    env.sleep(Duration.ofSeconds(95));
    ProtectionStatus later = wf.status();
    assertThat(later.deltaCycles()).isEqualTo(4);
    assertThat(later.latestRecoveryPoint().id()).isEqualTo("rp-5");
    assertThat(later.recoveryPoints()).extracting(p -> p.id())
        .containsExactly("rp-1", "rp-2", "rp-3", "rp-4", "rp-5");
    assertThat(later.health()).isEqualTo(Health.NORMAL);
    assertThat(later.rpoSeconds()).isBetween(0L, 30L);
    assertThat(later.sourceSite()).isEqualTo("primary");
    java.time.Instant now = java.time.Instant.ofEpochMilli(env.currentTimeMillis());
    assertThat(later.nextCycleAt()).as("the next cycle, a period at most from now")
        .isAfterOrEqualTo(now).isBeforeOrEqualTo(now.plusSeconds(30));
  }

  @Test
  void recoverableCopyFailureIsRetriedByTemporal(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    org.mockito.Mockito.doThrow(ApplicationFailure.newFailure("agent unreachable", "PEER_UNREACHABLE"))
        .doReturn(new DiskCopyResult("disk0", 1, 1, 0, 1))
        .doReturn(new DiskCopyResult("disk1", 1, 1, 0, 1))
        .when(agents).copyDisk(any());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = startProtection(client);

    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    verify(agents, times(3)).copyDisk(any());
  }

  @Test
  void copyStillFailingAfterItsRetriesIsStartedAgainEveryThirtyMinutes(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    ApplicationFailure down = ApplicationFailure.newFailure("agent unreachable", "PEER_UNREACHABLE");
    org.mockito.Mockito.doThrow(down, down, down, down, down, down, down, down, down, down, down)
        .doReturn(new DiskCopyResult("disk0", 1, 1, 0, 1))
        .doReturn(new DiskCopyResult("disk1", 1, 1, 0, 1))
        .when(agents).copyDisk(any());
    WorkflowTestSupport.start(env, agents);
    long started = env.currentTimeMillis();
    ProtectVmWorkflow wf = startProtection(client);

    // Ten attempts 5 s, 10 s, 20 s ... 10 min apart fail (30.6 min; AgentSteps.diskCopy), then
    // 30 minutes pass; the first attempt of the next round fails too.
    env.sleep(Duration.ofMinutes(60));
    assertThat(wf.status().state()).isEqualTo(ProtectionState.INITIAL_REPLICATION);
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    assertThat(env.currentTimeMillis() - started).isGreaterThanOrEqualTo(
        Duration.ofSeconds(1835).plusMinutes(30).toMillis());
    verify(agents, times(13)).copyDisk(any());
  }

  @Test
  void failedDeltaCyclesBackOffOneThenTwoMinutesWithWarningHealth(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    when(agents.replicateDelta(any()))
        .thenThrow(ApplicationFailure.newFailure("peer unreachable", "PEER_UNREACHABLE"))
        .thenThrow(ApplicationFailure.newFailure("peer unreachable", "PEER_UNREACHABLE"))
        .thenAnswer(inv -> WorkflowTestSupport.cycle(env, 2));
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = startProtection(client);

    env.sleep(Duration.ofSeconds(31));
    ProtectionStatus first = wf.status();
    assertThat(first.health()).isEqualTo(Health.WARNING);
    assertThat(first.healthReasons()).anyMatch(r -> r.contains("retrying in 1 min"));

    env.sleep(Duration.ofSeconds(61));
    ProtectionStatus second = wf.status();
    assertThat(second.failedCycles()).isEqualTo(2);
    assertThat(second.healthReasons()).anyMatch(r -> r.contains("retrying in 2 min"));

    env.sleep(Duration.ofSeconds(115));
    assertThat(wf.status().failedCycles()).isEqualTo(2);
    assertThat(wf.status().health()).isEqualTo(Health.WARNING);
    env.sleep(Duration.ofSeconds(6));
    // The retry is over, but 6 of the 7 cycles due since protection began were missed: WARNING
    // by the missed-cycle rule, not by the retry.
    ProtectionStatus recovered = wf.status();
    assertThat(recovered.healthReasons()).noneMatch(r -> r.contains("retrying"))
        .anyMatch(r -> r.contains("6 of the 7 cycles due in the last hour were missed"));
    assertThat(recovered.latestRecoveryPoint().generation()).isEqualTo(2);
  }

  @Test
  void nonRecoverableCycleFailureIsCriticalAndWaitsForTheOperator(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    when(agents.replicateDelta(any()))
        .thenThrow(ApplicationFailure.newNonRetryableFailure("replica in an invalid state",
            "INVALID_STATE"))
        .thenAnswer(inv -> WorkflowTestSupport.cycle(env, 2));
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = startProtection(client);

    env.sleep(Duration.ofHours(2));
    assertThat(wf.status().health()).isEqualTo(Health.CRITICAL);
    verify(agents, times(1)).replicateDelta(any());

    wf.resume(new OperatorRequest("disk replaced"));
    // No longer CRITICAL; still WARNING: the cycles of the last hour were missed while it waited.
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().health() == Health.WARNING);
    assertThat(wf.status().healthReasons()).noneMatch(r -> r.contains("INVALID_STATE"))
        .anyMatch(r -> r.contains("cycles due in the last hour were missed"));
    verify(agents, atLeast(2)).replicateDelta(any());
  }

  @Test
  void pauseStopsCyclesAndDisableEndsProtection(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = startProtection(client);
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);

    wf.pause(new OperatorRequest(null));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PAUSED);
    env.sleep(Duration.ofMinutes(10));
    verify(agents, times(0)).replicateDelta(any());
    assertThat(wf.status().nextCycleAt()).as("no cycle is due while paused").isNull();

    wf.disable(new OperatorRequest("decommissioned"));
    ProtectionStatus end = WorkflowStub.fromTyped(wf).getResult(ProtectionStatus.class);
    assertThat(end.state()).isEqualTo(ProtectionState.DISABLED);
    assertThat(end.nextCycleAt()).isNull();
    verify(agents).disableReplication(PLAN);
  }

  private static final java.util.concurrent.atomic.AtomicInteger BAD_INPUTS =
      new java.util.concurrent.atomic.AtomicInteger();

  static String failureOf(WorkflowClient client, String type, Object input) {
    WorkflowStub stub = client.newUntypedWorkflowStub(type, WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId("bad-input-" + type + "-" + BAD_INPUTS.incrementAndGet()).build());
    stub.start(input);
    Throwable t = org.assertj.core.api.Assertions.catchThrowable(() -> stub.getResult(Object.class));
    assertThat(t).isInstanceOf(WorkflowFailedException.class);
    StringBuilder messages = new StringBuilder();
    for (Throwable c = t; c != null; c = c.getCause()) {
      messages.append(c.getMessage()).append(" | ");
    }
    return messages.toString();
  }

  @Test
  void badInputFailsTheWorkflowAtOnceNamingTheProblem(TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    when(agents.planProtection("ghost")).thenThrow(ApplicationFailure.newNonRetryableFailure(
        "VM ghost not found on any site (primary, secondary)", "VM_NOT_FOUND"));
    WorkflowTestSupport.start(env, agents);

    assertThat(failureOf(client, "ProtectVm", Map.of())).contains("field 'vm' is required");
    assertThat(failureOf(client, "ProtectVm", Map.of("vm", "web01", "colour", "red")))
        .contains("colour");
    assertThat(failureOf(client, "ProtectVm", Map.of("vm", "../etc"))).contains("not a valid name");
    assertThat(failureOf(client, "ProtectVm", Map.of("vm", "web01", "policy", "gold")))
        .contains("unknown policy 'gold'");
    assertThat(failureOf(client, "ProtectVm", Map.of("vm", "ghost")))
        .contains("VM ghost not found");
  }

  @Test
  void aTargetSiteInTheInputPlansTowardsItAndABadOneIsRefused(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    io.siterecovery.activities.ProtectionPlan toCloud = new io.siterecovery.activities
        .ProtectionPlan("web01", "primary", "cloud", PLAN.disks());
    when(agents.planProtectionTo("web01", "cloud")).thenReturn(toCloud);
    WorkflowTestSupport.start(env, agents);

    assertThat(failureOf(client, "ProtectVm", Map.of("vm", "web01", "targetSite", "../x")))
        .contains("targetSite").contains("not a valid name");
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", "default", "cloud", null));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    assertThat(wf.status().targetSite()).isEqualTo("cloud");
    verify(agents, org.mockito.Mockito.never()).planProtection("web01");
    verify(agents).enableReplication(toCloud);
  }
}
