package io.siterecovery.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.DevStack;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * One malformed NBD request against a protected VM: a WRITE whose offset + length overflows.
 * It used to be recorded in the change log and then fail, and every delta cycle after it failed
 * on the replica: health WARNING, retrying for ever until a resync. Now protection stays NORMAL.
 */
class MalformedNbdRequestEndToEndTest {
  private static final long MIB = 1 << 20;

  @TempDir
  Path data;

  @Test
  void anOverflowingWriteLeavesProtectionNormalAndItsCyclesSucceeding() throws Exception {
    SiteRecoveryConfig.Policy fast = new SiteRecoveryConfig.Policy(Duration.ofSeconds(2), null,
        null, null, null, null, null, null, null);
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", fast))) {
      stack.operatorClient(stack.primary()).createVm("web01", List.of(16 * MIB));
      ProtectVmWorkflow protection = stack.client().newWorkflowStub(ProtectVmWorkflow.class,
          WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
              .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
      WorkflowClient.start(protection::protect, new ProtectVmInput("web01", "fast"));
      Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);

      try (NbdClient nbd = new NbdClient("127.0.0.1", stack.primary().nbdPort(), "web01/disk0")) {
        assertThatThrownBy(() -> nbd.write(0x7FFFFFFFFFFFF000L, new byte[8192], true))
            .isInstanceOf(IOException.class).hasMessageContaining("NBD error");
        nbd.write(MIB, new byte[] {1, 2, 3}, true); // the same connection goes on
      }
      long cycles = protection.status().deltaCycles();
      Eventually.await(() -> protection.status().deltaCycles() >= cycles + 2);
      ProtectionStatus after = protection.status();
      assertThat(after.health()).as("health reasons %s", after.healthReasons())
          .isEqualTo(Health.NORMAL);
      assertThat(after.failedCycles()).isZero();
      assertThat(after.resyncReason()).isNull();
      assertThat(stack.operatorClient(stack.secondary()).getVm("web01").replica()
          .appliedGeneration()).isGreaterThan(2);
    }
  }

}
