package io.siterecovery.workers;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.activities.AgentActivitiesImpl;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.activities.SiteDirectory;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.agent.vm.QuiesceHooks;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.CloudBucket;
import io.siterecovery.workers.dev.DevStack;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failback.FailbackInput;
import io.siterecovery.workflows.failback.FailbackState;
import io.siterecovery.workflows.failback.FailbackStatus;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.protection.RecoveryPoint;
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.siterecovery.workflows.reprotect.ReverseMode;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The cloud target on {@code dev}, through the workflows: a VM protected to the object-store site
 * {@code cloud} (s3proxy in process) with fio's checksummed patterns written before, during and
 * after its initial copy; a test failover and a planned failover recovered from the bucket by
 * the cloud's recovery host, each judged by {@code fio --verify_only} over NBD; the bucket's files
 * at rest never show a known pattern.
 */
class CloudEndToEndTest {
  private static final long MIB = 1 << 20;
  private static final String VM = "app01";
  /** Capped so that the initial copy (three 4 MiB chunks hold data) lasts about 6 s. */
  private static final SiteRecoveryConfig.Policy CAPPED = new SiteRecoveryConfig.Policy(
      Duration.ofSeconds(1), Duration.ofMinutes(2), Duration.ofHours(1), null, null, null, false,
      2.0, null);
  private static final SiteRecoveryConfig.Policy FAST = new SiteRecoveryConfig.Policy(
      Duration.ofSeconds(1), Duration.ofMinutes(2), Duration.ofHours(1), null, null, null, false,
      null, null);
  private static final byte[] CANARY = "site-recovery canary: this must never be readable at rest"
      .getBytes(StandardCharsets.US_ASCII);

  @TempDir
  Path data;

  private WorkflowClient client;

  private <T> T start(Class<T> type, String id) {
    return client.newWorkflowStub(type, WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE).setWorkflowId(id).build());
  }

  @Test
  void aVmProtectedToTheBucketFailsOverFromItWithEveryWriteVerifiedByFio() throws Exception {
    requireTool("fio", "fio");
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("capped", CAPPED))) {
      client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      AgentClient cloud = stack.operatorClient(stack.cloud());
      primary.createVm(VM, List.of(32 * MIB));
      int source = stack.primary().nbdPort();
      fio(source, "before", 0, "--do_verify=0");
      writeCanary(source, 30 * MIB);

      ProtectVmWorkflow protection = start(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(VM));
      WorkflowClient.start(protection::protect, new ProtectVmInput(VM, "capped", "cloud", null));
      Eventually.await(() -> protection.status().state() == ProtectionState.INITIAL_REPLICATION);
      fio(source, "during", 8 * MIB, "--do_verify=0");
      ProtectionStatus copying = protection.status();
      Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);
      assertThat(copying.state()).as("fio 'during' ended within the initial copy")
          .isEqualTo(ProtectionState.INITIAL_REPLICATION);
      assertThat(protection.status().targetSite()).isEqualTo(CloudBucket.SITE);
      fio(source, "after", 16 * MIB, "--do_verify=0");
      long cycles = protection.status().deltaCycles();
      Eventually.await(() -> protection.status().deltaCycles() > cycles + 1);
      assertThat(protection.status().recoveryPoints()).isNotEmpty();

      // -- a drill from the bucket: the test VM on the recovery host, at once, verified by fio
      int recoveryHost = stack.cloud().nbdPort();
      FailoverStatus testing = drilledFromTheBucket(recoveryHost, "LATEST",
          List.of("before", "during", "after"), "drill from the bucket passed");
      assertThat(testing.test().exports()).containsExactly(
          "nbd://127.0.0.1:" + recoveryHost + "/" + VM + "-test/disk0");
      assertThat(cloud.bucketRecoveries()).isEmpty();

      // -- the bucket loses an object (first disk chunk, fio's 'before' pattern): a resync,
      // asked for by the operator, compares the bucket's latest point with the disk and stores
      // what differs; the next points hold the chunk again (the planned failover checks it)
      List<Path> firstChunk = filesUnder(stack.bucket().storeDir()).stream()
          .filter(f -> f.getFileName().toString().startsWith("chunk-00000000-")).toList();
      assertThat(firstChunk).as("chunk 0's objects").isNotEmpty();
      for (Path f : firstChunk) {
        Files.delete(f);
      }
      long beforeResync = protection.status().deltaCycles();
      protection.resync(new OperatorRequest("e2e: an object was lost"));
      Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED
          && protection.status().deltaCycles() > beforeResync
          && protection.status().notes().stream().anyMatch(n -> n.contains("resync at")));
      assertThat(protection.status().notes()).anyMatch(n -> n.contains("resync at")
          && n.contains("blocks differed") && n.contains("recovery points kept"));

      // -- a planned failover to the cloud: the source stops, its last writes go to the bucket,
      // the recovery host serves the VM from it
      fio(source, "last", 24 * MIB, "--do_verify=0");
      FailoverWorkflow failover = start(FailoverWorkflow.class, FailoverWorkflow.workflowId(VM));
      WorkflowClient.start(failover::failover,
          new FailoverInput(VM, FailoverType.PLANNED, "LATEST"));
      Eventually.await(() -> failover.status().state() == FailoverState.AWAITING_COMMIT);
      assertThat(primary.getVm(VM).power()).isEqualTo(VmRecord.Power.OFF);
      for (String pattern : List.of("before", "during", "after", "last")) {
        assertThat(fio(recoveryHost, VM, pattern, offset(pattern), "--verify_only"))
            .as("fio '%s' on the VM recovered from the bucket", pattern).isZero();
      }
      assertThat(readCanary(recoveryHost, 30 * MIB)).isEqualTo(CANARY);
      assertThat(bucketFilesHolding(stack.bucket().storeDir(), CANARY))
          .as("the canary at rest in the bucket").isEmpty();
      assertThat(filesUnder(stack.bucket().storeDir())).as("the bucket holds objects").isNotEmpty();

      // cancelled: the source runs again, the recovery is gone, protection goes on
      failover.cancel(new OperatorRequest("e2e"));
      FailoverStatus cancelled = WorkflowStub.fromTyped(failover).getResult(FailoverStatus.class);
      assertThat(cancelled.state()).isEqualTo(FailoverState.CANCELLED);
      assertThat(cloud.bucketRecoveries()).isEmpty();
      assertThat(primary.getVm(VM).power()).isEqualTo(VmRecord.Power.RUNNING);
      long after = protection.status().deltaCycles();
      Eventually.await(() -> protection.status().deltaCycles() > after);
    }
  }

  /**
   * The way back, as the seed's product does it: committed in the cloud, the VM writes there;
   * Reprotect compares the cloud's disks with the old ones on primary block by block and sends
   * only what differs; Failback fails over home. fio and qemu-img judge the result.
   */
  @Test
  void aFailoverToTheCloudCommittedIsFailedBackSendingOnlyWhatTheCloudWrote() throws Exception {
    requireTool("fio", "fio");
    requireTool("qemu-img", "qemu-utils");
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", FAST))) {
      client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      AgentClient cloud = stack.operatorClient(stack.cloud());
      int source = stack.primary().nbdPort();
      committedInTheCloud(primary, source);
      assertThat(cloud.getVm(VM).role()).as("the cloud's own VM now")
          .isEqualTo(VmRecord.Role.PRIMARY);
      assertThat(cloud.bucketRecoveries()).isEmpty();
      assertThat(primary.getVm(VM).role()).as("fenced").isEqualTo(VmRecord.Role.FAILED_OVER);

      // the VM works in the cloud: fio's pattern and 64 KiB blocks at known places
      int recoveryHost = stack.cloud().nbdPort();
      for (String pattern : List.of("before", "after")) {
        assertThat(fio(recoveryHost, VM, pattern, offset(pattern), "--verify_only"))
            .as("fio '%s' in the cloud", pattern).isZero();
      }
      fio(recoveryHost, "cloud", 8 * MIB, "--do_verify=0");
      long written = 2 * MIB;
      try (NbdClient nbd = new NbdClient("127.0.0.1", recoveryHost, VM + "/disk0")) {
        byte[] block = new byte[64 * 1024];
        for (int i = 0; i < 8; i++) {
          java.util.Arrays.fill(block, (byte) (i + 1));
          nbd.write(24 * MIB + i * 256 * 1024L, block, true);
          written += block.length;
        }
      }

      ReprotectWorkflow reprotect = start(ReprotectWorkflow.class,
          ReprotectWorkflow.workflowId(VM));
      ReprotectStatus back = reprotect.reprotect(new ReprotectInput(VM, false, "fast"));
      assertThat(back.mode()).isEqualTo(ReverseMode.CHECKSUM_RESYNC);
      assertThat(back.sourceSite()).isEqualTo(CloudBucket.SITE);
      assertThat(back.bytesSent()).as("sent back against %d written in the cloud", written)
          .isPositive().isLessThanOrEqualTo(written * 12 / 10);
      protectedFromTheCloudToPrimary(stack);

      FailbackStatus done = failedBackHome(true);
      assertThat(primary.getVm(VM).role()).isEqualTo(VmRecord.Role.PRIMARY);
      for (String pattern : List.of("before", "after", "cloud")) {
        assertThat(fio(source, VM, pattern, offset(pattern), "--verify_only"))
            .as("fio '%s' back home", pattern).isZero();
      }

      // reprotected to the bucket again: its points there taken up and brought in line by a
      // resync, the copy the cloud's host ran deleted; a drill from the bucket sees every write
      assertThat(done.reprotect().mode()).isEqualTo(ReverseMode.CHECKSUM_RESYNC);
      assertThat(done.reprotect().targetSite()).isEqualTo(CloudBucket.SITE);
      assertThat(done.reprotect().steps()).anyMatch(step -> step.contains(
          "the bucket of cloud (the copy its host ran until the failback is deleted) is now the "
          + "replica of primary"));
      assertThat(cloud.listVms()).noneMatch(v -> v.name().equals(VM));
      ProtectVmWorkflow again = client.newWorkflowStub(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(VM));
      Eventually.await(() -> again.status().state() == ProtectionState.PROTECTED
          && "primary".equals(again.status().sourceSite()));
      assertThat(again.status().targetSite()).isEqualTo(CloudBucket.SITE);
      fio(source, "home", 24 * MIB, "--do_verify=0");
      // a cycle under way may have sealed before fio's last writes: the one after it holds them
      long cycles = again.status().deltaCycles();
      Eventually.await(() -> again.status().deltaCycles() > cycles + 1);
      drilledFromTheBucket(recoveryHost, "LATEST", List.of("before", "after", "cloud", "home"),
          "the bucket after the round trip");
    }
  }

  /**
   * The way back when the old disks on-prem are gone (here the operator deleted the fenced copy
   * once the failover was committed): Reprotect copies the cloud's disks whole to primary, and
   * Failback brings the VM home with every write it made in the cloud.
   */
  @Test
  void withTheOldDisksGoneReprotectFromTheCloudCopiesTheDisksWhole() throws Exception {
    requireTool("fio", "fio");
    requireTool("qemu-img", "qemu-utils");
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", FAST))) {
      client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      int source = stack.primary().nbdPort();
      committedInTheCloud(primary, source);
      fio(stack.cloud().nbdPort(), "cloud", offset("cloud"), "--do_verify=0");
      primary.deleteFencedVm(VM);
      assertThat(primary.listVms()).noneMatch(v -> v.name().equals(VM));

      ReprotectWorkflow reprotect = start(ReprotectWorkflow.class,
          ReprotectWorkflow.workflowId(VM));
      ReprotectStatus back = reprotect.reprotect(new ReprotectInput(VM, false, "fast"));
      assertThat(back.mode()).isEqualTo(ReverseMode.FULL_COPY);
      assertThat(back.sourceSite()).isEqualTo(CloudBucket.SITE);
      // the copy is protect-<vm>'s initial replication, in the new direction
      assertThat(back.steps()).anyMatch(step -> step.contains(
          "the old site has no disks for " + VM + ": protect-" + VM + " copies them in full"));
      protectedFromTheCloudToPrimary(stack);

      failedBackHome(false);
      assertThat(primary.getVm(VM).role()).isEqualTo(VmRecord.Role.PRIMARY);
      for (String pattern : List.of("before", "after", "cloud")) {
        assertThat(fio(source, VM, pattern, offset(pattern), "--verify_only"))
            .as("fio '%s' back home on the rebuilt disk", pattern).isZero();
      }
    }
  }

  /**
   * A policy that asks for app-consistent points gets them in the bucket as from a peer: the
   * source runs the VM's quiesce hook before it seals, the point is marked so in the bucket, and a
   * drill at LATEST_APP_CONSISTENT recovers it with the writes made before the hook.
   */
  @Test
  void aPolicyAskingForAppConsistentPointsGetsThemInTheBucket() throws Exception {
    requireTool("fio", "fio");
    SiteRecoveryConfig.Policy quiesced = new SiteRecoveryConfig.Policy(Duration.ofSeconds(1),
        Duration.ofMinutes(2), Duration.ofHours(1), Duration.ofSeconds(1), null, null, false,
        null, null);
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("quiesced", quiesced))) {
      client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      int source = stack.primary().nbdPort();
      primary.createVm(VM, List.of(32 * MIB));
      fio(source, "before", offset("before"), "--do_verify=0");
      Path hookRuns = data.resolve("hook-runs");
      // local configuration of the source host, as `vm quiesce-hook` writes it
      QuiesceHooks.set(data.resolve("primary"), VM, new QuiesceHooks.Hook(
          List.of("sh", "-c", "echo \"$SITE_RECOVERY_VM\" >> " + hookRuns), 10));
      ProtectVmWorkflow protection = start(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(VM));
      WorkflowClient.start(protection::protect,
          new ProtectVmInput(VM, "quiesced", CloudBucket.SITE, null));
      Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);
      fio(source, "after", offset("after"), "--do_verify=0");
      // a point under way may have sealed before fio's last writes: the one after it holds them
      long latest = protection.status().latestRecoveryPoint().generation();
      Eventually.await(() -> protection.status().recoveryPoints().stream()
          .filter(RecoveryPoint::appConsistent).anyMatch(p -> p.generation() >= latest + 2));
      assertThat(Files.readAllLines(hookRuns)).as("the hook ran for the VM").contains(VM);
      assertThat(protection.status().health()).isEqualTo(Health.NORMAL);

      FailoverStatus testing = drilledFromTheBucket(stack.cloud().nbdPort(),
          "LATEST_APP_CONSISTENT", List.of("before", "after"), "the app-consistent point");
      assertThat(testing.recoveryPoint().appConsistent()).isTrue();
    }
  }

  /**
   * The seed's disaster: the primary site is gone. The failover finds the VM through the bucket
   * (no site that answers protects it), recovers it at the latest point the bucket holds, and owes
   * the lost site its fence.
   */
  @Test
  void anUnplannedFailoverRecoversFromTheBucketWhenThePrimarySiteIsGone() throws Exception {
    requireTool("fio", "fio");
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("fast", FAST))) {
      client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      int source = stack.primary().nbdPort();
      ProtectVmWorkflow protection = protectedToTheBucket(primary, source);
      long cycles = protection.status().deltaCycles();
      Eventually.await(() -> protection.status().deltaCycles() > cycles + 1);

      stack.primary().close(); // the site is lost: its agent, its disks, its NBD clients
      // found through the bucket, with the disks a VM recovered from it exports (what a recovery
      // plan lists and its scripts get)
      ProtectionPlan found = new AgentActivitiesImpl(new SiteDirectory(stack.config().sites(),
          stack.config().partners(), stack.config().objectStoreDirectory(),
          stack.config().operatorCredentials()), (id, progress) -> { }).describeProtection(VM);
      assertThat(found.sourceSite()).isEqualTo("primary");
      assertThat(found.targetSite()).isEqualTo(CloudBucket.SITE);
      assertThat(found.disks()).containsExactly(new ProtectionPlan.DiskInfo("disk0", 32 * MIB));
      FailoverWorkflow failover = start(FailoverWorkflow.class, FailoverWorkflow.workflowId(VM));
      WorkflowClient.start(failover::failover,
          new FailoverInput(VM, FailoverType.UNPLANNED, "LATEST"));
      Eventually.await(() -> failover.status().state() == FailoverState.AWAITING_COMMIT);
      FailoverStatus awaiting = failover.status();
      assertThat(awaiting.targetSite()).isEqualTo(CloudBucket.SITE);
      assertThat(awaiting.fence()).as("owed to the lost site").contains("primary");
      int recoveryHost = stack.cloud().nbdPort();
      for (String pattern : List.of("before", "after")) {
        assertThat(fio(recoveryHost, VM, pattern, offset(pattern), "--verify_only"))
            .as("fio '%s' on the VM recovered from the bucket", pattern).isZero();
      }
      failover.commit(new OperatorRequest("e2e"));
      Eventually.await(() -> failover.status().state() == FailoverState.COMMITTED);
      assertThat(stack.operatorClient(stack.cloud()).getVm(VM).role())
          .isEqualTo(VmRecord.Role.PRIMARY);
    }
  }

  private static void qemuImgCompare(Path a, Path b) throws Exception {
    Process p = new ProcessBuilder("qemu-img", "compare", "-f", "raw", "-F", "raw", a.toString(),
        b.toString()).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("qemu-img compare: " + out).isZero();
  }

  /**
   * The VM created on primary with fio's 'before' pattern, protected to the bucket (policy fast)
   * until PROTECTED, then fio's 'after' pattern written.
   */
  private ProtectVmWorkflow protectedToTheBucket(AgentClient primary, int source)
      throws Exception {
    primary.createVm(VM, List.of(32 * MIB));
    fio(source, "before", 0, "--do_verify=0");
    ProtectVmWorkflow protection = start(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId(VM));
    WorkflowClient.start(protection::protect, new ProtectVmInput(VM, "fast", "cloud", null));
    Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);
    fio(source, "after", 16 * MIB, "--do_verify=0");
    return protection;
  }

  /** Reprotect's outcome: the cloud's VM protected to primary, the disks equal on both. */
  private void protectedFromTheCloudToPrimary(DevStack stack) throws Exception {
    ProtectVmWorkflow reverse = client.newWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId(VM));
    Eventually.await(() -> reverse.status().state() == ProtectionState.PROTECTED
        && CloudBucket.SITE.equals(reverse.status().sourceSite()));
    qemuImgCompare(stack.cloud().diskImage(VM, "disk0"), stack.primary().diskImage(VM, "disk0"));
  }

  /** Failback from the cloud, committed once its failover awaits the commit. */
  private FailbackStatus failedBackHome(boolean reprotect) throws Exception {
    FailbackWorkflow failback = start(FailbackWorkflow.class, FailbackWorkflow.workflowId(VM));
    WorkflowClient.start(failback::failback, new FailbackInput(VM, reprotect, "fast"));
    FailoverWorkflow home = client.newWorkflowStub(FailoverWorkflow.class,
        FailoverWorkflow.workflowId(VM));
    Eventually.await(() -> {
      try {
        return home.status().state() == FailoverState.AWAITING_COMMIT;
      } catch (RuntimeException notYet) {
        return false;
      }
    });
    failback.commit(new OperatorRequest("e2e"));
    FailbackStatus done = WorkflowStub.fromTyped(failback).getResult(FailbackStatus.class);
    assertThat(done.state()).isEqualTo(FailbackState.COMPLETED);
    return done;
  }

  /**
   * A drill from the bucket at {@code point}: fio verifies each pattern on the test VM the
   * recovery host exports, then cleanup, which must end CLEANED_UP. Answers the drill's status
   * while it was TESTING.
   */
  private FailoverStatus drilledFromTheBucket(int recoveryHost, String point,
      List<String> patterns, String what) throws Exception {
    FailoverWorkflow drill = start(FailoverWorkflow.class, FailoverWorkflow.testWorkflowId(VM));
    WorkflowClient.start(drill::failover, new FailoverInput(VM, FailoverType.TEST, point));
    Eventually.await(() -> drill.status().state() == FailoverState.TESTING);
    FailoverStatus testing = drill.status();
    for (String pattern : patterns) {
      assertThat(fio(recoveryHost, VM + "-test", pattern, offset(pattern), "--verify_only"))
          .as("fio '%s' on the test VM: %s", pattern, what).isZero();
    }
    drill.cleanup(new CleanupRequest(what));
    assertThat(WorkflowStub.fromTyped(drill).getResult(FailoverStatus.class).state())
        .isEqualTo(FailoverState.CLEANED_UP);
    return testing;
  }

  /** Protected to the bucket, failed over to the cloud (PLANNED) and committed there. */
  private void committedInTheCloud(AgentClient primary, int source) throws Exception {
    protectedToTheBucket(primary, source);
    FailoverWorkflow failover = start(FailoverWorkflow.class, FailoverWorkflow.workflowId(VM));
    WorkflowClient.start(failover::failover,
        new FailoverInput(VM, FailoverType.PLANNED, "LATEST"));
    Eventually.await(() -> failover.status().state() == FailoverState.AWAITING_COMMIT);
    failover.commit(new OperatorRequest("e2e"));
    FailoverStatus committed = WorkflowStub.fromTyped(failover).getResult(FailoverStatus.class);
    assertThat(committed.state()).isEqualTo(FailoverState.COMMITTED);
  }

  private static long offset(String pattern) {
    return switch (pattern) {
      case "before" -> 0;
      case "during", "cloud" -> 8 * MIB;
      case "after" -> 16 * MIB;
      default -> 24 * MIB;
    };
  }

  private static void writeCanary(int port, long at) throws Exception {
    try (NbdClient nbd = new NbdClient("127.0.0.1", port, VM + "/disk0")) {
      nbd.write(at, CANARY, true);
    }
  }

  private static byte[] readCanary(int port, long at) throws Exception {
    try (NbdClient nbd = new NbdClient("127.0.0.1", port, VM + "/disk0")) {
      return nbd.read(at, CANARY.length);
    }
  }

  private static List<Path> filesUnder(Path dir) throws Exception {
    try (Stream<Path> walk = Files.walk(dir)) {
      return walk.filter(Files::isRegularFile).toList();
    }
  }

  private static List<Path> bucketFilesHolding(Path dir, byte[] needle) throws Exception {
    List<Path> found = new ArrayList<>();
    for (Path f : filesUnder(dir)) {
      byte[] bytes = Files.readAllBytes(f);
      outer:
      for (int i = 0; i + needle.length <= bytes.length; i++) {
        for (int j = 0; j < needle.length; j++) {
          if (bytes[i + j] != needle[j]) {
            continue outer;
          }
        }
        found.add(f);
        break;
      }
    }
    return found;
  }

  private int fio(int nbdPort, String name, long offset, String mode) throws Exception {
    return fio(nbdPort, VM, name, offset, mode);
  }

  /**
   * fio's own checksums, the independent judge: 2 MiB of 4 KiB blocks at {@code offset}, each
   * with a crc32c header, written with {@code --do_verify=0} and checked with
   * {@code --verify_only}; the pattern's name seeds both runs alike. Returns fio's exit code.
   */
  private int fio(int nbdPort, String vm, String name, long offset, String mode)
      throws Exception {
    List<String> command = new ArrayList<>(List.of("fio", "--name=" + name,
        "--ioengine=nbd", "--uri=nbd://127.0.0.1:" + nbdPort + "/" + vm + "/disk0",
        "--rw=randwrite", "--bs=4k", "--offset=" + offset, "--size=2M", "--iodepth=4",
        "--verify=crc32c", "--verify_state_save=0", "--randrepeat=1",
        "--randseed=" + Math.abs(name.hashCode()), mode));
    Path log = Files.createTempFile(data, "fio", ".log");
    Process p = new ProcessBuilder(command).directory(data.toFile()).redirectErrorStream(true)
        .redirectOutput(log.toFile()).start();
    if (!p.waitFor(60, TimeUnit.SECONDS)) {
      p.destroyForcibly();
      throw new AssertionError("fio " + name + " did not finish in 60 s:\n"
          + Files.readString(log));
    }
    String out = Files.readString(log);
    if (mode.equals("--do_verify=0")) {
      assertThat(p.exitValue()).as("fio writing %s:%n%s", name, out).isZero();
      assertThat(out).contains("WRITE:");
    } else if (p.exitValue() == 0) {
      assertThat(out).as("fio verifying %s:%n%s", name, out).contains("READ:")
          .doesNotContain("verify: bad");
    }
    return p.exitValue();
  }

  /** fio is part of the test: without it the test fails, naming what to install. */
  private static void requireTool(String tool, String debianPackage) {
    boolean found = Arrays.stream(System.getenv().getOrDefault("PATH", "")
        .split(File.pathSeparator)).anyMatch(dir -> Path.of(dir, tool).toFile().canExecute());
    assertThat(found).as("%s is needed to judge the disks (apt-get install %s)", tool,
        debianPackage).isTrue();
  }
}
