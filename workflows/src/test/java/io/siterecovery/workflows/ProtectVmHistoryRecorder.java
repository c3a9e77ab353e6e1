package io.siterecovery.workflows;

import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.when;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.protection.PolicyChange;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.replication.InitialReplicationWorkflow;
import io.temporal.api.common.v1.WorkflowExecution;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.failure.ApplicationFailure;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfEnvironmentVariable;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.mockito.Mockito;

/**
 * Records the ProtectVm and InitialReplication histories of {@code histories/README.md} with the
 * code as it is, into the directory named by RECORD_HISTORIES (never into the resources: the
 * recorded files are worth keeping because older code wrote them). Off unless that is set.
 */
@EnabledIfEnvironmentVariable(named = "RECORD_HISTORIES", matches = ".+")
class ProtectVmHistoryRecorder {
  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  private static final Path OUT = Path.of(System.getenv().getOrDefault("RECORD_HISTORIES", "."));

  private static ProtectVmWorkflow stub(WorkflowClient client) {
    return client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
  }

  private static void save(WorkflowClient client, String workflowId, String runId, String name)
      throws IOException {
    Files.createDirectories(OUT);
    String json = runId == null ? client.fetchHistory(workflowId).toJson(true)
        : client.fetchHistory(workflowId, runId).toJson(true);
    Files.writeString(OUT.resolve(name), json);
  }

  @Test
  void lifecycle(TestWorkflowEnvironment env, WorkflowClient client) throws IOException {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, false);
    ApplicationFailure down = ApplicationFailure.newFailure("agent unreachable", "PEER_UNREACHABLE");
    Mockito.doThrow(down, down, down, down, down, down, down)
        .doReturn(new DiskCopyResult("disk0", 1, 1, 0, 1))
        .doReturn(new DiskCopyResult("disk1", 1, 1, 0, 1))
        .when(agents).copyDisk(any());
    WorkflowTestSupport.start(env, agents);
    WorkflowTestSupport.POLICIES.put("hourly", WorkflowTestSupport.policy("hourly",
        Duration.ofHours(1)));
    ProtectVmWorkflow wf = stub(client);
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", "default"));
    env.sleep(Duration.ofMinutes(60));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().state() == ProtectionState.PROTECTED);
    env.sleep(Duration.ofSeconds(95));

    // A recoverable failure (retried after 1 min), then a non-recoverable one (CRITICAL, resume).
    when(agents.replicateDelta(any()))
        .thenThrow(ApplicationFailure.newFailure("peer unreachable", "PEER_UNREACHABLE"))
        .thenThrow(ApplicationFailure.newNonRetryableFailure("replica in an invalid state",
            "INVALID_STATE"))
        .thenAnswer(inv -> WorkflowTestSupport.cycle(env, 50 + env.currentTimeMillis() / 1000));
    env.sleep(Duration.ofMinutes(3));
    wf.resume(new OperatorRequest("fixed"));
    env.sleep(Duration.ofSeconds(65));
    wf.pause(new OperatorRequest("maintenance"));
    env.sleep(Duration.ofMinutes(5));
    wf.resume(new OperatorRequest(null));
    env.sleep(Duration.ofSeconds(65));
    wf.resync(new OperatorRequest("check the replica"));
    WorkflowTestSupport.awaitVirtual(env, () -> wf.status().notes().stream()
        .anyMatch(n -> n.contains("resync at generation")));
    env.sleep(Duration.ofSeconds(35));
    wf.setPolicy(new PolicyChange("hourly"));
    env.sleep(Duration.ofSeconds(35));
    wf.disable(new OperatorRequest("decommissioned"));
    WorkflowStub.fromTyped(wf).getResult(ProtectionStatus.class);
    save(client, "protect-web01", null, "protectvm-lifecycle.json");
    save(client, InitialReplicationWorkflow.workflowId("web01"), null,
        "initialreplication-long-retry.json");
  }

  @Test
  void continuedAsNew(TestWorkflowEnvironment env, WorkflowClient client) throws IOException {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = stub(client);
    WorkflowExecution first = WorkflowClient.start(wf::protect, new ProtectVmInput("web01", null));
    env.sleep(Duration.ofSeconds(30 * 200 + 90));
    wf.pause(new OperatorRequest(null));
    env.sleep(Duration.ofMinutes(2));
    wf.disable(new OperatorRequest(null));
    WorkflowStub.fromTyped(wf).getResult(ProtectionStatus.class);
    save(client, "protect-web01", first.getRunId(), "protectvm-continued-as-new.json");
    save(client, "protect-web01", null, "protectvm-after-continue-as-new.json");
  }
}
