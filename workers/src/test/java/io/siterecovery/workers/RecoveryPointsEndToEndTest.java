package io.siterecovery.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.workers.config.SiteRecoveryConfig;
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
import io.siterecovery.workflows.protection.RecoveryPoint;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Through the workflows, on real agents: a resync repairs a damaged replica, and an unplanned
 * failover to an older recovery point starts the replica with exactly the source's bytes of then,
 * leaving the replica's disk as it was, so that a cancel needs no resync.
 */
class RecoveryPointsEndToEndTest {
  private static final long MIB = 1 << 20;
  private static final SiteRecoveryConfig.Policy FAST = new SiteRecoveryConfig.Policy(
      Duration.ofSeconds(1), Duration.ofMinutes(2), Duration.ofHours(1), null, null, null, true,
      null, null);

  @TempDir
  Path data;

  @Test
  void resyncRepairsTheReplicaAndUnplannedFailoverRollsBackToAnOlderPoint() throws Exception {
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", FAST))) {
      WorkflowClient client = stack.client();
      stack.operatorClient(stack.primary()).createVm("web01", List.of(16 * MIB));
      Path source = stack.primary().diskImage("web01", "disk0");
      Path replica = stack.secondary().diskImage("web01", "disk0");
      Random random = new Random(3);
      write(stack.primary().nbdPort(), random, 20);

      ProtectVmWorkflow protection = client.newWorkflowStub(ProtectVmWorkflow.class,
          WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
              .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
      WorkflowClient.start(protection::protect, new ProtectVmInput("web01", "fast"));
      await(() -> protection.status().state() == ProtectionState.PROTECTED);

      // Damage the (powered-off) replica behind the agents' back, then ask for a resync.
      long damagedAt = pointAfterWrites(protection);
      try (RandomAccessFile f = new RandomAccessFile(replica.toFile(), "rw")) {
        byte[] junk = new byte[4096];
        for (int i = 0; i < 5; i++) {
          random.nextBytes(junk);
          f.seek((long) random.nextInt(16 * 256) * 4096);
          f.write(junk);
        }
      }
      assertThat(DiskCompare.firstDifference(source, replica)).isNotEqualTo(-1);
      protection.resync(new OperatorRequest("test"));
      await(() -> protection.status().notes().stream().anyMatch(n -> n.contains("resync at")));
      long afterResync = pointAfterWrites(protection);
      assertThat(afterResync).isGreaterThan(damagedAt);
      assertThat(DiskCompare.firstDifference(source, replica)).isEqualTo(-1);

      // Two points with different contents; keep a copy of the source at the first one.
      write(stack.primary().nbdPort(), random, 20);
      long first = pointAfterWrites(protection);
      Path atFirst = data.resolve("source-at-first-point.img");
      Files.copy(source, atFirst);
      write(stack.primary().nbdPort(), random, 20);
      long second = pointAfterWrites(protection);
      assertThat(second).isGreaterThan(first);
      assertThat(protection.status().recoveryPoints()).extracting(RecoveryPoint::generation)
          .contains(first, second);

      FailoverWorkflow failover = client.newWorkflowStub(FailoverWorkflow.class,
          WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
              .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
      WorkflowClient.start(failover::failover, new FailoverInput("web01", FailoverType.UNPLANNED,
          RecoveryPoint.idOf(first)));
      await(() -> failover.status().state() == FailoverState.AWAITING_COMMIT);
      assertThat(failover.status().recoveryPoint().generation()).isEqualTo(first);
      try (NbdClient running = new NbdClient("127.0.0.1", stack.secondary().nbdPort(),
          "web01/disk0")) {
        assertThat(DiskCompare.firstDifference(running, atFirst))
            .as("the replica VM runs at the older point").isEqualTo(-1);
      }
      assertThat(DiskCompare.firstDifference(source, replica))
          .as("while the replica's disk stays where it was").isEqualTo(-1);

      // Cancel: the replica's disk was never written, so protection resumes with no resync.
      failover.cancel(new OperatorRequest("drill over"));
      assertThat(WorkflowStub.fromTyped(failover).getResult(FailoverStatus.class).state())
          .isEqualTo(FailoverState.CANCELLED);
      await(() -> protection.status().state() == ProtectionState.PROTECTED);
      write(stack.primary().nbdPort(), random, 10);
      pointAfterWrites(protection);
      assertThat(protection.status().notes().stream().filter(n -> n.contains("resync at")))
          .hasSize(1);
      assertThat(DiskCompare.firstDifference(source, replica)).isEqualTo(-1);
    }
  }

  /** A point sealed after every write so far: two cycles after the current one. */
  private static long pointAfterWrites(ProtectVmWorkflow protection) {
    long now = latest(protection);
    await(() -> latest(protection) >= now + 2);
    return latest(protection);
  }

  private static long latest(ProtectVmWorkflow protection) {
    RecoveryPoint p = protection.status().latestRecoveryPoint();
    return p == null ? -1 : p.generation();
  }

  private static void write(int port, Random random, int blocks) throws Exception {
    try (NbdClient nbd = new NbdClient("127.0.0.1", port, "web01/disk0")) {
      byte[] data = new byte[64 * 1024];
      for (int i = 0; i < blocks; i++) {
        random.nextBytes(data);
        nbd.write((long) random.nextInt((int) (nbd.size() / data.length)) * data.length, data,
            false);
      }
      nbd.flush();
    }
  }

  /** A resync and its cycles take longer than the other end-to-end waits. */
  private static void await(BooleanSupplier condition) {
    Eventually.await(Duration.ofSeconds(90), condition);
  }
}
