package io.siterecovery.workflows;

import static org.assertj.core.api.Assertions.assertThat;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.CopyDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.replication.InitialReplicationWorkflow;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.atomic.AtomicBoolean;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * What the Temporal Web UI shows on ProtectVm's page: its static summary, and the current
 * details it reads through the built-in {@code __temporal_workflow_metadata} query.
 */
class ProtectVmLiveDetailsTest {
  private static final long MIB = 1L << 20;

  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  private static ProtectVmWorkflow protect(WorkflowClient client) {
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01"))
        .setStaticSummary(Summaries.protect("web01", "default")).build());
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", "default"));
    return wf;
  }

  private static String currentDetails(WorkflowClient client) {
    return WorkflowTestSupport.currentDetails(client, ProtectVmWorkflow.workflowId("web01"));
  }

  @Test
  void detailsShowTheInitialCopysProgressBarRateAndEtaThenTheProtectedState(
      TestWorkflowEnvironment env, WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    ProtectVmWorkflow signaller = client.newWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId("web01"));
    AtomicBoolean targetDown = new AtomicBoolean(true);
    doAnswer(inv -> {
      CopyDiskRequest req = inv.getArgument(0, CopyDiskRequest.class);
      if (targetDown.get()) {
        // Half of disk0 (1 GiB of the plan's 3) got across at 50 MiB/s, then the target went.
        signaller.copyProgress(new CopyProgress("INITIAL_REPLICATION", req.disk(),
            req.sizeBytes() / 2, req.sizeBytes(), req.sizeBytes() / 2, 50.0 * MIB, Instant.now()));
        throw ApplicationFailure.newFailure("target unreachable", "PEER_UNREACHABLE");
      }
      return new DiskCopyResult(req.disk(), req.sizeBytes(), req.sizeBytes(), 0, 1000);
    }).when(agents).copyDisk(any());
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client);

    WorkflowTestSupport.awaitVirtual(env, () -> currentDetails(client).contains("Progress:"));
    String copying = currentDetails(client);
    // 512 MiB of 3 GiB: 16 %; the 2.5 GiB left at 50 MiB/s take 52 s.
    assertThat(copying).startsWith("**INITIAL_REPLICATION** · health **NORMAL**\n")
        .contains("- Progress: `[###-----------------]  16 %` 512.0 MiB of 3.0 GiB "
            + "(INITIAL_REPLICATION, disk0)")
        .contains("- Rate: 50.0 MiB/s · ETA 52 s (")
        .contains("- Route: primary → secondary, policy default")
        .contains("- Updated: ");
    // the child's own page says which disk it copies and where the progress is
    assertThat(WorkflowTestSupport.currentDetails(client,
        InitialReplicationWorkflow.workflowId("web01")))
        .startsWith("**COPYING**\n")
        .contains("- Disks copied: `[--------------------]   0 %` 0 of 2\n")
        .contains("- Disk: disk0 (1.0 GiB)\n")
        .contains("- Progress: on protect-web01's page");

    targetDown.set(false);
    env.sleep(Duration.ofMinutes(45));
    assertThat(wf.status().state()).isEqualTo(ProtectionState.PROTECTED);
    String protectedDetails = currentDetails(client);
    assertThat(protectedDetails).startsWith("**PROTECTED** · health **NORMAL**\n")
        .doesNotContain("Progress:")
        .containsPattern("- RPO: \\d+ s · latest point rp-\\d+ at \\S+Z, crash-consistent")
        .contains("- Cycle: next delta cycle due at ")
        .containsPattern("- Cycles: [1-9]\\d* done, 0 failed");
  }

  @Test
  void detailsFollowTheDeltaCyclesAndAPause(TestWorkflowEnvironment env, WorkflowClient client) {
    WorkflowTestSupport.start(env, WorkflowTestSupport.healthyAgents(env, true));
    ProtectVmWorkflow wf = protect(client);
    env.sleep(Duration.ofSeconds(95));
    assertThat(currentDetails(client)).contains("- Cycles: 3 done, 0 failed")
        .contains("latest point rp-4");

    wf.pause(new io.siterecovery.workflows.common.OperatorRequest("maintenance"));
    WorkflowTestSupport.awaitVirtual(env, () -> currentDetails(client).startsWith("**PAUSED**"));
    assertThat(currentDetails(client)).doesNotContain("next delta cycle due");
  }

  /**
   * The embedded test server keeps the summary the start request carries, as the real server
   * does: DescribeWorkflowExecution returns it, for the run the client started and for the child
   * this workflow started.
   */
  @Test
  void theRunAndItsInitialCopyCarryAStaticSummary(TestWorkflowEnvironment env,
      WorkflowClient client) {
    WorkflowTestSupport.start(env, WorkflowTestSupport.healthyAgents(env, false));
    ProtectVmWorkflow wf = protect(client);
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);

    assertThat(WorkflowTestSupport.staticSummary(client, ProtectVmWorkflow.workflowId("web01")))
        .isEqualTo("Protect web01, policy default");
    assertThat(WorkflowTestSupport.staticSummary(client,
        InitialReplicationWorkflow.workflowId("web01")))
        .isEqualTo("Initial copy of web01: primary → secondary");
  }
}
