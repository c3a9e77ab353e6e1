package io.siterecovery.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.DevStack;
import io.siterecovery.workers.dev.DiskCompare;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failback.FailbackInput;
import io.siterecovery.workflows.failback.FailbackState;
import io.siterecovery.workflows.failback.FailbackStatus;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.ChangeRecoveryPoint;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.RecoveryPoint;
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.siterecovery.workflows.reprotect.ReverseMode;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import java.io.File;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The whole lifecycle through the workflows on real agents, bytes checked at every stage: a test
 * failover whose VM stays at its point while cycles apply underneath, then cleanup leaving
 * nothing; a planned failover moved to an older point and back; commit; writes on the new site;
 * Reprotect sending only what changed; Failback home and protection as it started.
 */
class LifecycleEndToEndTest {
  private static final long MIB = 1 << 20;
  private static final String VM = "web01";
  private static final SiteRecoveryConfig.Policy FAST = new SiteRecoveryConfig.Policy(
      Duration.ofSeconds(1), Duration.ofMinutes(2), Duration.ofHours(1), null, null, null, false,
      null, null);

  @TempDir
  Path data;

  private WorkflowClient client;

  private <T> T start(Class<T> type, String id) {
    return client.newWorkflowStub(type, WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE).setWorkflowId(id).build());
  }

  @Test
  void testFailoverThenARoundTripHomeWithEveryStageVerified() throws Exception {
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", FAST))) {
      client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      AgentClient secondary = stack.operatorClient(stack.secondary());
      Path primaryImage = stack.primary().diskImage(VM, "disk0");
      Path secondaryImage = stack.secondary().diskImage(VM, "disk0");
      primary.createVm(VM, List.of(16 * MIB));
      Random random = new Random(5);
      write(stack.primary().nbdPort(), random, 20);
      ProtectVmWorkflow protection = start(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(VM));
      WorkflowClient.start(protection::protect, new ProtectVmInput(VM, "fast"));
      Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);

      // -- a test failover: its VM stays at its point while three cycles apply underneath
      FailoverWorkflow test = start(FailoverWorkflow.class, FailoverWorkflow.testWorkflowId(VM));
      WorkflowClient.start(test::failover, new FailoverInput(VM, FailoverType.TEST, "LATEST"));
      Eventually.await(() -> test.status().state() == FailoverState.TESTING);
      assertThat(test.status().test().exports()).containsExactly(
          "nbd://127.0.0.1:" + stack.secondary().nbdPort() + "/web01-test/disk0");
      byte[] atPoint = readAll(stack.secondary().nbdPort(), "web01-test/disk0");
      long cycles = protection.status().deltaCycles();
      for (int i = 0; i < 3; i++) {
        write(stack.primary().nbdPort(), random, 8);
        long before = protection.status().deltaCycles();
        Eventually.await(() -> protection.status().deltaCycles() > before);
      }
      assertThat(protection.status().deltaCycles()).isGreaterThanOrEqualTo(cycles + 3);
      assertThat(readAll(stack.secondary().nbdPort(), "web01-test/disk0"))
          .as("the test VM still shows its point").isEqualTo(atPoint);
      assertThat(Files.readAllBytes(secondaryImage))
          .as("the replica moved on").isNotEqualTo(atPoint);
      try (NbdClient testVm = new NbdClient("127.0.0.1", stack.secondary().nbdPort(),
          "web01-test/disk0")) {
        testVm.write(0, "a drill's write".getBytes(), true);
      }
      test.cleanup(new CleanupRequest("orders page answered"));
      FailoverStatus cleaned = WorkflowStub.fromTyped(test).getResult(FailoverStatus.class);
      assertThat(cleaned.state()).isEqualTo(FailoverState.CLEANED_UP);
      assertThat(cleaned.test().notes()).isEqualTo("orders page answered");
      assertThat(secondary.testClones()).isEmpty();
      assertThat(data.resolve("secondary/test-clones/web01")).doesNotExist();
      assertThatThrownBy(() -> new NbdClient("127.0.0.1", stack.secondary().nbdPort(),
          "web01-test/disk0").close()).isInstanceOf(java.io.IOException.class);

      // -- a planned failover, moved to an older point and back before the commit; fio writes
      // its checksummed pattern last, after the older point was taken
      write(stack.primary().nbdPort(), random, 8);
      long beforeFailover = protection.status().deltaCycles();
      Eventually.await(() -> protection.status().deltaCycles() > beforeFailover);
      List<RecoveryPoint> points = protection.status().recoveryPoints();
      fio(stack.primary().nbdPort(), "--do_verify=0");
      FailoverWorkflow failover = start(FailoverWorkflow.class, FailoverWorkflow.workflowId(VM));
      WorkflowClient.start(failover::failover,
          new FailoverInput(VM, FailoverType.PLANNED, "LATEST"));
      Eventually.await(() -> failover.status().state() == FailoverState.AWAITING_COMMIT);
      RecoveryPoint latest = failover.status().recoveryPoint();
      assertThat(firstDifference(stack.secondary().nbdPort(), primaryImage)).isEqualTo(-1);
      String older = points.get(points.size() - 3).id();
      failover.changeRecoveryPoint(new ChangeRecoveryPoint(older));
      Eventually.await(() -> failover.status().pointsTried().size() == 2
          && failover.status().state() == FailoverState.AWAITING_COMMIT);
      assertThat(firstDifference(stack.secondary().nbdPort(), primaryImage))
          .as("an older point").isNotEqualTo(-1);
      assertThat(fio(stack.secondary().nbdPort(), "--verify_only", "--verify_fatal=1"))
          .as("fio at a point before its writes").isNotZero();
      failover.changeRecoveryPoint(new ChangeRecoveryPoint(latest.id()));
      Eventually.await(() -> failover.status().pointsTried().size() == 3
          && failover.status().state() == FailoverState.AWAITING_COMMIT);
      assertThat(failover.status().pointsTried()).extracting(RecoveryPoint::id)
          .containsExactly(latest.id(), older, latest.id());
      assertThat(firstDifference(stack.secondary().nbdPort(), primaryImage))
          .as("back at the latest point, newer than the one before").isEqualTo(-1);
      assertThat(fio(stack.secondary().nbdPort(), "--verify_only"))
          .as("fio verifies on the replica VM every block it wrote on the source").isZero();
      failover.commit(new OperatorRequest("e2e"));
      FailoverStatus committed = WorkflowStub.fromTyped(failover).getResult(FailoverStatus.class);
      assertThat(committed.state()).isEqualTo(FailoverState.COMMITTED);
      assertThat(primary.getVm(VM).role()).as("fenced").isEqualTo(VmRecord.Role.FAILED_OVER);
      assertThat(primary.getVm(VM).power()).isEqualTo(VmRecord.Power.OFF);

      // -- the VM works on the new site; Reprotect sends back only what it wrote
      long written = write(stack.secondary().nbdPort(), random, 24);
      ReprotectWorkflow reprotect = start(ReprotectWorkflow.class,
          ReprotectWorkflow.workflowId(VM));
      ReprotectStatus reprotected = reprotect.reprotect(new ReprotectInput(VM, false, "fast"));
      assertThat(reprotected.mode()).isEqualTo(ReverseMode.CHANGED_RANGES);
      assertThat(reprotected.salvaged()).isNull();
      assertThat(reprotected.bytesSent()).as("sent back against %d written", written)
          .isLessThanOrEqualTo(written * 11 / 10);
      assertThat(DiskCompare.firstDifference(secondaryImage, primaryImage)).isEqualTo(-1);
      ProtectVmWorkflow reverse = client.newWorkflowStub(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(VM));
      Eventually.await(() -> reverse.status().state() == ProtectionState.PROTECTED);
      assertThat(reverse.status().sourceSite()).isEqualTo("secondary");
      assertThat(reverse.status().targetSite()).isEqualTo("primary");

      // -- Failback: a planned failover home, then protection as it started
      write(stack.secondary().nbdPort(), random, 8);
      FailbackWorkflow failback = start(FailbackWorkflow.class, FailbackWorkflow.workflowId(VM));
      WorkflowClient.start(failback::failback, new FailbackInput(VM, true));
      FailoverWorkflow home = client.newWorkflowStub(FailoverWorkflow.class,
          FailoverWorkflow.workflowId(VM));
      Eventually.await(() -> {
        try {
          return home.status().state() == FailoverState.AWAITING_COMMIT;
        } catch (RuntimeException notYet) {
          return false;
        }
      });
      assertThat(firstDifference(stack.primary().nbdPort(), secondaryImage)).isEqualTo(-1);
      failback.commit(new OperatorRequest("e2e"));
      FailbackStatus back = WorkflowStub.fromTyped(failback).getResult(FailbackStatus.class);
      assertThat(back.state()).isEqualTo(FailbackState.COMPLETED);
      assertThat(back.reprotect().mode()).isEqualTo(ReverseMode.CHANGED_RANGES);
      assertThat(primary.getVm(VM).role()).isEqualTo(VmRecord.Role.PRIMARY);
      assertThat(secondary.getVm(VM).role()).isEqualTo(VmRecord.Role.REPLICA);
      ProtectVmWorkflow again = client.newWorkflowStub(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(VM));
      Eventually.await(() -> again.status().state() == ProtectionState.PROTECTED
          && "primary".equals(again.status().sourceSite()));
      assertThat(DiskCompare.firstDifference(primaryImage, secondaryImage)).isEqualTo(-1);
      qemuImgCompare(primaryImage, secondaryImage);
    }
  }

  @Test
  void anUnplannedFailoverSalvagesTheWritesTheOldSourceNeverShippedThenResyncs()
      throws Exception {
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", FAST))) {
      client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      Path primaryImage = stack.primary().diskImage(VM, "disk0");
      Path secondaryImage = stack.secondary().diskImage(VM, "disk0");
      primary.createVm(VM, List.of(16 * MIB));
      Random random = new Random(9);
      write(stack.primary().nbdPort(), random, 20);
      ProtectVmWorkflow protection = start(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(VM));
      WorkflowClient.start(protection::protect, new ProtectVmInput(VM, "fast"));
      Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);
      long cycles = protection.status().deltaCycles();
      Eventually.await(() -> protection.status().deltaCycles() > cycles);

      // Cycles stop; these writes never leave the primary, which is then given up for lost.
      protection.pause(new OperatorRequest("e2e"));
      Eventually.await(() -> protection.status().state() == ProtectionState.PAUSED);
      long lost = write(stack.primary().nbdPort(), random, 6);
      FailoverWorkflow failover = start(FailoverWorkflow.class, FailoverWorkflow.workflowId(VM));
      WorkflowClient.start(failover::failover,
          new FailoverInput(VM, FailoverType.UNPLANNED, "LATEST_PROCESSED"));
      Eventually.await(() -> failover.status().state() == FailoverState.AWAITING_COMMIT);
      assertThat(failover.status().fence()).startsWith("fenced on primary");
      assertThat(primary.getVm(VM).power()).isEqualTo(VmRecord.Power.OFF);
      failover.commit(new OperatorRequest("e2e"));
      assertThat(WorkflowStub.fromTyped(failover).getResult(FailoverStatus.class).state())
          .isEqualTo(FailoverState.COMMITTED);
      write(stack.secondary().nbdPort(), random, 4);

      ReprotectStatus reprotected = start(ReprotectWorkflow.class,
          ReprotectWorkflow.workflowId(VM)).reprotect(new ReprotectInput(VM, false, "fast"));
      assertThat(reprotected.mode()).isEqualTo(ReverseMode.CHECKSUM_RESYNC);
      assertThat(reprotected.salvaged()).isNotNull();
      assertThat(reprotected.salvaged().bytes()).isEqualTo(lost);
      assertThat(Path.of(reprotected.salvaged().path())).isDirectory();
      assertThat(primary.salvaged()).singleElement()
          .satisfies(s -> assertThat(s.id()).isEqualTo(reprotected.salvaged().id()));
      assertThat(DiskCompare.firstDifference(secondaryImage, primaryImage))
          .as("the old disks now equal the active VM's").isEqualTo(-1);
      qemuImgCompare(secondaryImage, primaryImage);
    }
  }

  /** The source site is gone: its replica stands for it, and the fence is owed. */
  @Test
  void anUnplannedFailoverFindsTheVmThroughItsReplicaWhenThePrimarySiteIsGone()
      throws Exception {
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", FAST))) {
      client = stack.client();
      stack.operatorClient(stack.primary()).createVm(VM, List.of(16 * MIB));
      Random random = new Random(11);
      write(stack.primary().nbdPort(), random, 20);
      ProtectVmWorkflow protection = start(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(VM));
      WorkflowClient.start(protection::protect, new ProtectVmInput(VM, "fast"));
      Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);
      long cycles = protection.status().deltaCycles();
      Eventually.await(() -> protection.status().deltaCycles() > cycles);
      byte[] replicated = Files.readAllBytes(stack.secondary().diskImage(VM, "disk0"));

      stack.primary().close();
      FailoverWorkflow failover = start(FailoverWorkflow.class, FailoverWorkflow.workflowId(VM));
      WorkflowClient.start(failover::failover,
          new FailoverInput(VM, FailoverType.UNPLANNED, "LATEST"));
      Eventually.await(() -> failover.status().state() == FailoverState.AWAITING_COMMIT);
      assertThat(failover.status().sourceSite()).isEqualTo("primary");
      assertThat(failover.status().fence()).contains("primary");
      assertThat(readAll(stack.secondary().nbdPort(), VM + "/disk0"))
          .as("the replica VM at the latest point applied").isEqualTo(replicated);
      failover.commit(new OperatorRequest("e2e"));
      Eventually.await(() -> failover.status().state() == FailoverState.COMMITTED);
    }
  }

  @Test
  void aFailoverStartedDuringATestCleansItUpAndACancelNeedsNoResync() throws Exception {
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", FAST))) {
      client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      primary.createVm(VM, List.of(16 * MIB));
      Random random = new Random(11);
      write(stack.primary().nbdPort(), random, 10);
      ProtectVmWorkflow protection = start(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(VM));
      WorkflowClient.start(protection::protect, new ProtectVmInput(VM, "fast"));
      Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);
      FailoverWorkflow test = start(FailoverWorkflow.class, FailoverWorkflow.testWorkflowId(VM));
      WorkflowClient.start(test::failover, new FailoverInput(VM, FailoverType.TEST, "LATEST"));
      Eventually.await(() -> test.status().state() == FailoverState.TESTING);

      FailoverWorkflow failover = start(FailoverWorkflow.class, FailoverWorkflow.workflowId(VM));
      WorkflowClient.start(failover::failover,
          new FailoverInput(VM, FailoverType.PLANNED, "LATEST"));
      FailoverStatus drill = WorkflowStub.fromTyped(test).getResult(FailoverStatus.class);
      assertThat(drill.state()).isEqualTo(FailoverState.CLEANED_UP);
      assertThat(drill.test().notes()).contains("cleaned up by failover-web01");
      Eventually.await(() -> failover.status().state() == FailoverState.AWAITING_COMMIT);
      assertThat(failover.status().steps()).anyMatch(s -> s.contains("test failover was running"));

      failover.cancel(new OperatorRequest("e2e"));
      FailoverStatus cancelled = WorkflowStub.fromTyped(failover).getResult(FailoverStatus.class);
      assertThat(cancelled.state()).isEqualTo(FailoverState.CANCELLED);
      assertThat(primary.getVm(VM).power()).isEqualTo(VmRecord.Power.RUNNING);
      assertThat(primary.getVm(VM).role()).isEqualTo(VmRecord.Role.PRIMARY);
      Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);
      write(stack.primary().nbdPort(), random, 8);
      long cycles = protection.status().deltaCycles();
      Eventually.await(() -> protection.status().deltaCycles() > cycles + 1);
      assertThat(protection.status().resyncReason()).as("no resync after the cancel").isNull();
      assertThat(protection.status().notes()).noneMatch(n -> n.contains("resync"));
      assertThat(DiskCompare.firstDifference(stack.primary().diskImage(VM, "disk0"),
          stack.secondary().diskImage(VM, "disk0"))).isEqualTo(-1);
    }
  }

  private static long write(int port, Random random, int blocks) throws Exception {
    try (NbdClient nbd = new NbdClient("127.0.0.1", port, VM + "/disk0")) {
      byte[] data = new byte[64 * 1024];
      for (int i = 0; i < blocks; i++) {
        random.nextBytes(data);
        nbd.write((long) random.nextInt((int) (nbd.size() / data.length)) * data.length, data,
            true);
      }
      nbd.flush();
    }
    return blocks * 64L * 1024;
  }

  /** The independent judge: {@code qemu-img compare}, which CI installs. */
  private static void qemuImgCompare(Path a, Path b) throws Exception {
    requireTool("qemu-img", "qemu-utils");
    Process p = new ProcessBuilder("qemu-img", "compare", "-f", "raw", "-F", "raw", a.toString(),
        b.toString()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("qemu-img compare: " + out).isZero();
  }

  /**
   * The second judge, fio's own checksums: 4 MiB of 4 KiB blocks at 4 MiB into the disk, each
   * with a crc32c header, written with {@code --do_verify=0} and checked with
   * {@code --verify_only}; the same seed makes both runs visit the same blocks. Returns fio's
   * exit code.
   */
  private int fio(int nbdPort, String... mode) throws Exception {
    requireTool("fio", "fio");
    List<String> command = new ArrayList<>(List.of("fio", "--name=lifecycle",
        "--ioengine=nbd", "--uri=nbd://127.0.0.1:" + nbdPort + "/" + VM + "/disk0",
        "--rw=randwrite", "--bs=4k", "--offset=4M", "--size=4M", "--iodepth=4",
        "--verify=crc32c", "--verify_state_save=0", "--randrepeat=1", "--randseed=20261130"));
    command.addAll(List.of(mode));
    Path log = Files.createTempFile(data, "fio", ".log");
    Process p = new ProcessBuilder(command).directory(data.toFile()).redirectErrorStream(true)
        .redirectOutput(log.toFile()).start();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("fio " + List.of(mode) + " did not finish in 60 s:\n"
          + Files.readString(log));
    }
    String out = Files.readString(log);
    if (List.of(mode).contains("--do_verify=0")) {
      assertThat(p.exitValue()).as("fio writing:%n%s", out).isZero();
      assertThat(out).contains("WRITE:");
    } else if (p.exitValue() == 0) {
      assertThat(out).as("fio verifying:%n%s", out).contains("READ:").doesNotContain("verify: bad");
    }
    return p.exitValue();
  }

  /** These judges are part of the test: without them it fails, naming what to install. */
  private static void requireTool(String tool, String debianPackage) {
    boolean found = Arrays.stream(System.getenv().getOrDefault("PATH", "")
        .split(File.pathSeparator)).anyMatch(dir -> Path.of(dir, tool).toFile()
        .canExecute());
    assertThat(found).as("%s is needed to judge the images (apt-get install %s)", tool,
        debianPackage).isTrue();
  }

  private static byte[] readAll(int port, String export) throws Exception {
    try (NbdClient nbd = new NbdClient("127.0.0.1", port, export)) {
      byte[] all = new byte[(int) nbd.size()];
      for (int at = 0; at < all.length; at += (int) MIB) {
        System.arraycopy(nbd.read(at, (int) MIB), 0, all, at, (int) MIB);
      }
      return all;
    }
  }

  private static long firstDifference(int port, Path image) throws Exception {
    try (NbdClient nbd = new NbdClient("127.0.0.1", port, VM + "/disk0")) {
      return DiskCompare.firstDifference(nbd, image);
    }
  }

}
