package io.siterecovery.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workers.dev.DevStack;
import io.siterecovery.workers.dev.DiskCompare;
import io.siterecovery.workflows.Registration;
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
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import java.io.File;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Embedded Temporal + worker + two agents: protect, write, planned failover, commit, compare. */
class EndToEndTest {
  private static final long MIB = 1 << 20;

  @TempDir
  Path data;

  @Test
  void protectWritePlannedFailoverCommitAndCompare() throws Exception {
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0))) {
      WorkflowClient client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      primary.createVm("web01", List.of(32 * MIB, 16 * MIB));
      Random random = new Random(1);
      write(stack.primary().nbdPort(), "web01/disk0", random, 40, false);

      ProtectVmWorkflow protection = client.newWorkflowStub(ProtectVmWorkflow.class,
          WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
              .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
      WorkflowClient.start(protection::protect, new ProtectVmInput("web01", "default"));
      Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);
      ProtectionStatus protectedStatus = protection.status();
      assertThat(protectedStatus.latestRecoveryPoint()).isNotNull();
      assertThat(protectedStatus.targetSite()).isEqualTo("secondary");

      // Written after protection: only the failover's final synchronisation carries these.
      write(stack.primary().nbdPort(), "web01/disk0", random, 20, true);
      write(stack.primary().nbdPort(), "web01/disk1", random, 10, false);

      FailoverWorkflow failover = client.newWorkflowStub(FailoverWorkflow.class,
          WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
              .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
      WorkflowClient.start(failover::failover,
          new FailoverInput("web01", FailoverType.PLANNED, "LATEST"));
      Eventually.await(() -> failover.status().state() == FailoverState.AWAITING_COMMIT);
      assertThat(protection.status().state()).isEqualTo(ProtectionState.FAILED_OVER);
      assertThat(stack.operatorClient(stack.secondary()).getVm("web01").power())
          .isEqualTo(VmRecord.Power.RUNNING);

      for (String disk : List.of("disk0", "disk1")) {
        Path source = stack.primary().diskImage("web01", disk);
        Path replica = stack.secondary().diskImage("web01", disk);
        assertThat(DiskCompare.firstDifference(source, replica)).as(disk).isEqualTo(-1);
        if (new File("/usr/bin/qemu-img").canExecute()) {
          Process p = new ProcessBuilder("qemu-img", "compare", "-f", "raw", "-F", "raw",
              source.toString(), replica.toString()).redirectErrorStream(true).start();
          String out = new String(p.getInputStream().readAllBytes());
          assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
          assertThat(p.exitValue()).as("qemu-img compare: " + out).isZero();
        }
      }

      failover.commit(new OperatorRequest("e2e"));
      FailoverStatus done = WorkflowStub.fromTyped(failover).getResult(FailoverStatus.class);
      assertThat(done.state()).isEqualTo(FailoverState.COMMITTED);
      ProtectionStatus end = WorkflowStub.fromTyped(protection).getResult(ProtectionStatus.class);
      assertThat(end.state()).isEqualTo(ProtectionState.FAILED_OVER);
      assertThat(stack.operatorClient(stack.secondary()).getVm("web01").role())
          .isEqualTo(VmRecord.Role.PRIMARY);
      assertThat(primary.getVm("web01").role()).isEqualTo(VmRecord.Role.FAILED_OVER);
      try (NbdClient nbd = new NbdClient("127.0.0.1", stack.secondary().nbdPort(), "web01/disk0")) {
        nbd.write(0, new byte[] {1, 2, 3}, true);
        assertThat(nbd.read(0, 3)).containsExactly(1, 2, 3);
      }
    }
  }

  private static void write(int port, String export, Random random, int blocks, boolean fua)
      throws Exception {
    try (NbdClient nbd = new NbdClient("127.0.0.1", port, export)) {
      byte[] data = new byte[64 * 1024];
      for (int i = 0; i < blocks; i++) {
        random.nextBytes(data);
        nbd.write((long) random.nextInt((int) (nbd.size() / data.length)) * data.length, data, fua);
      }
      nbd.flush();
    }
  }

}
