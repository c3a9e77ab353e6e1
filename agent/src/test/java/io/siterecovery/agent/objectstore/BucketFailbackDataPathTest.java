package io.siterecovery.agent.objectstore;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.PromoteResult;
import io.siterecovery.agent.api.AgentMessages.ReverseResult;
import io.siterecovery.agent.api.BucketMessages.BucketInitialProgress;
import io.siterecovery.agent.api.BucketMessages.BucketPoints;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoverFromBucketRequest;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryInfo;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryProgress;
import io.siterecovery.agent.objectstore.ship.BucketShipper;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testing.AgentProcess;
import io.siterecovery.agent.testing.QemuIoSession;
import io.siterecovery.agent.testing.RawHttp;
import io.siterecovery.agent.testing.ResyncRun;
import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.SourceProtection;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.UnaryOperator;
import org.jclouds.blobstore.BlobStore;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Failback from the cloud, the data path: a VM shipped by the primary agent to the bucket of
 * site {@code cloud}, recovered on the cloud's recovery host (instant recovery), written to
 * there, committed ({@code recover-from-bucket/promote}) into a VM of that host, then reverse
 * replication through the peer machinery: the primary's old disks become the replica of the
 * cloud agent and a checksum resync sends only the blocks that differ. Real agents over TLS,
 * s3proxy in process, qemu-io and qemu-img through NBD.
 */
class BucketFailbackDataPathTest {
  private static final long MIB = 1L << 20;
  private static final int CHUNK = 1 << 20;
  private static final int BLOCK = 64 << 10;
  private static final String VM = "fb01";

  @TempDir
  Path dir;

  @Test
  void aVmFailedOverToTheCloudIsCommittedThereAndOnlyItsWritesTravelBack() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    long size = 32 * MIB;
    String bucketVmId = BucketShipper.bucketVmId(VM);
    GatedBlobStore[] gate = new GatedBlobStore[1];
    try (S3ProxyServer s3proxy = S3ProxyServer.start(Files.createDirectories(dir.resolve("s3")),
        gated(gate, bucketVmId))) {
      Path siteFile = siteFile(s3proxy);
      HostAgent primary = agent("primary", siteFile);
      HostAgent cloud = agent("cloud", siteFile);
      try {
        primary.addPeer("cloud", cloud.url());
        cloud.addPeer("primary", primary.url());
        AgentClient p = TestCerts.operatorClient(primary);

        // the primary ships its VM to the bucket: an initial copy and a cycle
        p.createVm(VM, List.of(size));
        String primaryNbd = primary.nbdUri(VM, "disk0");
        byte[] random = new byte[(int) (20 * MIB)];
        new Random(21).nextBytes(random);
        qemuIo(primaryNbd, "write -s " + Files.write(dir.resolve("random.bin"), random)
            + " 0 20M").assertOk();
        BucketInitialProgress step;
        do {
          step = p.bucketInitial(VM, "cloud", Duration.ofSeconds(10), null);
        } while (!step.finished());
        qemuIo(primaryNbd, "write -P 0x3c 5M 64k", "write -P 0x3d 24M 1M").assertOk();
        long point = p.bucketCycle(VM, "cloud", null).pointId();
        assertThat(primary.vms().get(VM).dir().resolve("bucket-cloud")).isDirectory();
        // cloud is a peer too: its agent is not this VM's replica, its bucket is
        assertThatThrownBy(() -> p.enableProtection(VM, "cloud"))
            .isInstanceOfSatisfying(AgentException.class, e -> {
              assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE);
              assertThat(e.getMessage()).contains("replicated to the bucket of site cloud");
            });
        Path expected = Files.copy(primary.diskImage(VM, "disk0"), dir.resolve("expected.raw"));

        // the primary is fenced as the worker's failover does
        p.setPower(VM, VmRecord.Power.OFF);
        p.setRole(VM, VmRecord.Role.FAILED_OVER);

        // the cloud's recovery host finds the point in the bucket alone and recovers it
        AgentClient c = TestCerts.operatorClient(cloud);
        BucketPoints points = c.bucketSitePoints("cloud", VM);
        assertThat(points.points().get(points.points().size() - 1).pointId()).isEqualTo(point);
        gate[0].allow(0);
        RecoveryInfo recovered = c.recoverFromBucket(VM, new RecoverFromBucketRequest("cloud",
            points.bucketVmId(), point, false));
        String export = recovered.exports().get(0);
        // the primary, coming back now, must fence its copy: the VM runs on the cloud
        assertThat(TestCerts.clientAs(Identity.site("primary"), cloud).fenceCheck(VM).fence())
            .as("the fence check of a VM recovered from the bucket").isTrue();
        assertThat(export).isEqualTo(cloud.nbdUri(VM, "disk0"));
        assertThatThrownBy(() -> c.promoteBucketRecovery(VM, "primary", null))
            .as("a commit before the disk is local")
            .isInstanceOfSatisfying(AgentException.class, e -> {
              assertThat(e.code()).isEqualTo(ErrorCode.NOT_LOCAL_YET);
              assertThat(e.code().recoverable()).isTrue();
              assertThat(e.getMessage()).containsPattern("\\d+ of " + size + " bytes local");
            });
        gate[0].open();

        // the VM writes on the cloud: 4 blocks of 64 KiB in 3 chunks of 1 MiB
        qemuIo(export, "write -P 0x5a 1M 4k", "write -P 0x5b 10300k 8k",
            "write -P 0x5c 30M 64k").assertOk();
        RecoveryWaits.writeImage(expected, MIB, 4 << 10, (byte) 0x5a);
        RecoveryWaits.writeImage(expected, 10300 << 10, 8 << 10, (byte) 0x5b);
        RecoveryWaits.writeImage(expected, 30 * MIB, 64 << 10, (byte) 0x5c);
        long blocksWritten = 4;
        long chunksWritten = 3;
        RecoveryWaits.awaitComplete(c, VM);
        Path recoveryImage = dir.resolve("cloud/bucket-recoveries/" + VM + "/disk0.img");
        Object inode = Files.getAttribute(recoveryImage, "unix:ino");

        QemuIoSession client = QemuIoSession.open(export);
        client.ok("read -P 0x5a 1M 4k");

        long started = System.nanoTime();
        PromoteResult promoted = c.promoteBucketRecovery(VM, "primary", null);
        long promoteMillis = (System.nanoTime() - started) / 1_000_000;
        assertThat(promoted).isEqualTo(new PromoteResult(VM, "primary", chunksWritten * CHUNK));
        VmRecord adopted = c.getVm(VM);
        assertThat(adopted.role()).isEqualTo(VmRecord.Role.PRIMARY);
        assertThat(adopted.power()).isEqualTo(VmRecord.Power.RUNNING);
        assertThat(adopted.protection()).isEqualTo(new SourceProtection("primary", false));
        assertThat(adopted.replica()).isNull();
        assertThat(adopted.home()).isEqualTo("primary");
        assertThat(adopted.disks()).isEqualTo(p.getVm(VM).disks());
        assertThat(RawHttp.send(cloud, Identity.operator(), "GET", "/v1/bucket-recoveries", null)
            .body()).isEqualTo("[]");
        assertThat(dir.resolve("cloud/bucket-recoveries/" + VM)).doesNotExist();
        assertThat(Files.getAttribute(cloud.diskImage(VM, "disk0"), "unix:ino"))
            .as("the image is moved, not copied").isEqualTo(inode);
        assertThat(c.sourceStatus(VM).changedSinceFailoverBytes()).isEqualTo(chunksWritten * CHUNK);
        assertThat(client.command("read -P 0x5a 1M 4k")).as("a client of the recovery")
            .contains("failed");
        client.close();
        // the same export name, now the VM's, with the writes
        compareRaw(expected.toString(), cloud.nbdUri(VM, "disk0")).assertOk();
        assertThat(c.promoteBucketRecovery(VM, "primary", null)).as("repeated")
            .isEqualTo(promoted);

        // a restart of the recovery host: the VM is there, no recovery, the same answer
        cloud.close();
        cloud = agent("cloud", siteFile);
        cloud.addPeer("primary", primary.url());
        primary.addPeer("cloud", cloud.url());
        AgentClient c2 = TestCerts.operatorClient(cloud);
        assertThat(c2.getVm(VM).role()).isEqualTo(VmRecord.Role.PRIMARY);
        assertThat(cloud.bucketRecoveries().list()).isEmpty();
        assertThat(c2.promoteBucketRecovery(VM, "primary", "primary")).isEqualTo(promoted);
        assertThatThrownBy(() -> c2.promoteBucketRecovery(VM, "elsewhere", null))
            .isInstanceOfSatisfying(AgentException.class,
                e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE));

        // Reprotect: the primary's old disks become the cloud's replica, a resync evens them
        ReverseResult reversed = p.reverse(VM, "cloud");
        assertThat(reversed.salvage()).as("the primary had shipped everything").isNull();
        assertThat(primary.vms().get(VM).dir().resolve("bucket-cloud"))
            .as("the old bucket source's state").doesNotExist();
        assertThat(c2.enableProtection(VM, "primary").initialComplete()).isFalse();
        c2.beginResync(VM);
        ResyncRun.Totals totals = ResyncRun.disk(c2, VM, "disk0", 0, 256, BLOCK, null, null);
        c2.completeResync(VM);
        compareRaw(primary.diskImage(VM, "disk0").toString(),
            cloud.diskImage(VM, "disk0").toString()).assertOk();
        compareRaw(primary.diskImage(VM, "disk0").toString(), expected.toString()).assertOk();
        System.out.printf("failback data path: promote in %d ms (%d MiB written as %d chunks);"
            + " the resync compared %d blocks, %d differed, %d bytes sent for %d blocks of"
            + " 64 KiB written%n", promoteMillis, promoted.changedBytes() / MIB, chunksWritten,
            totals.blocksCompared(), totals.blocksDiffering(), totals.bytesSent(),
            blocksWritten);
        assertThat(totals.bytesSent()).as("bytes the resync sent")
            .isLessThanOrEqualTo(2 * blocksWritten * BLOCK);
      } finally {
        gate[0].open();
        cloud.close();
        primary.close();
      }
    }
  }

  @Test
  void theCommitIsRefusedForATestRecoveryAnUnknownVmBadNamesAndAPeer() throws Exception {
    assumeInstalled("qemu-io");
    try (S3ProxyServer s3proxy = S3ProxyServer.start(Files.createDirectories(dir.resolve("s3")));
        HostAgent primary = agent("primary", siteFile(s3proxy));
        HostAgent cloud = agent("cloud", siteFile(s3proxy))) {
      ship(primary, "fb02", 4 * MIB);
      AgentClient c = TestCerts.operatorClient(cloud);
      c.recoverFromBucket("fb02", new RecoverFromBucketRequest("cloud",
          BucketShipper.bucketVmId("fb02"), null, true));
      RecoveryWaits.awaitComplete(c, "fb02-test");

      assertThatThrownBy(() -> c.promoteBucketRecovery("fb02", "primary", null))
          .isInstanceOfSatisfying(AgentException.class, e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE);
            assertThat(e.getMessage()).contains("only a test recovery on this host (fb02-test)");
          });
      assertThatThrownBy(() -> c.promoteBucketRecovery("fb02-test", "primary", null))
          .isInstanceOfSatisfying(AgentException.class, e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE);
            assertThat(e.getMessage()).contains("is a test recovery");
          });
      assertThatThrownBy(() -> c.promoteBucketRecovery("nope01", "primary", null))
          .isInstanceOfSatisfying(AgentException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.VM_NOT_FOUND));
      for (String[] names : new String[][] {{"..", null}, {"primary", "a b"},
          {"x".repeat(64), null}, {"primary", "-home"}}) {
        assertThatThrownBy(() -> c.promoteBucketRecovery("fb02-test", names[0], names[1]))
            .as("oldSource %s, home %s", names[0], names[1])
            .isInstanceOfSatisfying(AgentException.class,
                e -> assertThat(e.code()).isEqualTo(ErrorCode.BAD_REQUEST));
      }
      assertThat(RawHttp.send(cloud, Identity.operator(), "POST",
          "/v1/vms/fb02-test/recover-from-bucket/promote", "{}").statusCode()).isEqualTo(400);
      AgentClient peer = TestCerts.clientAs(Identity.site("primary"), cloud);
      assertThatThrownBy(() -> peer.promoteBucketRecovery("fb02-test", "primary", null))
          .isInstanceOfSatisfying(AgentException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.FORBIDDEN));
      assertThatThrownBy(() -> peer.bucketSitePoints("cloud", "fb02"))
          .isInstanceOfSatisfying(AgentException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.FORBIDDEN));
      // nothing changed: the test recovery is there, and no VM
      assertThat(c.listVms()).isEmpty();
      assertThat(cloud.bucketRecoveries().list()).extracting(RecoveryInfo::vm)
          .containsExactly("fb02-test");
    }
  }

  @Test
  void aChunkTheBucketDoesNotGiveIsNamedAndTriedAgainWhenTheCommitIsAsked() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    try (S3ProxyServer s3proxy = S3ProxyServer.start(Files.createDirectories(dir.resolve("s3")));
        HostAgent primary = agent("primary", siteFile(s3proxy));
        HostAgent cloud = agent("cloud", siteFile(s3proxy))) {
      Path expected = ship(primary, "fb03", 4 * MIB);
      ObjectNames names = new ObjectNames(BucketShipper.bucketVmId("fb03"));
      Path object = s3proxy.objectFile("dr/" + names.chunk(0, 2, 0));
      Path aside = Files.move(object, dir.resolve("chunk-aside"));
      AgentClient c = TestCerts.operatorClient(cloud);
      c.recoverFromBucket("fb03", new RecoverFromBucketRequest("cloud",
          BucketShipper.bucketVmId("fb03"), null, false));
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      RecoveryProgress p;
      while ((p = c.recoveryProgress("fb03")).localBytes() + CHUNK
          * p.disks().get(0).failedChunks().size() < p.totalBytes()) {
        assertThat(System.nanoTime()).as("the fetch ends").isLessThan(deadline);
        Thread.onSpinWait();
      }
      assertThat(p.disks().get(0).failedChunks()).containsExactly(2L);

      assertThatThrownBy(() -> c.promoteBucketRecovery("fb03", "primary", null))
          .isInstanceOfSatisfying(AgentException.class, e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE);
            assertThat(e.code().recoverable()).isFalse();
            assertThat(e.getMessage()).contains("disk0 chunks [2]");
          });
      assertThat(cloud.bucketRecoveries().list()).as("the recovery stays").hasSize(1);

      Files.move(aside, object); // repaired: the commit's retry gets it
      assertThat(c.promoteBucketRecovery("fb03", "primary", null).changedBytes()).isZero();
      compareRaw(expected.toString(), cloud.nbdUri("fb03", "disk0")).assertOk();
    }
  }

  /**
   * The recovery host halted (as by {@code kill -9}: no hook, no flush) at each step of a
   * commit; the restarted agent has the recovery (the commit can be asked again) or the VM,
   * never neither, never a VM without its disks, and the commit answers the same either way.
   */
  @ParameterizedTest
  @ValueSource(strings = {"bucket-promote-offline", "bucket-promote-intent",
      "bucket-promote-image:1", "bucket-promote-adopted"})
  void aRecoveryHostKilledDuringTheCommitEndsWithTheVmOrTheRecovery(String step)
      throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    String vm = "kill02";
    try (S3ProxyServer s3proxy = S3ProxyServer.start(
        Files.createDirectories(dir.resolve("s3")))) {
      Path siteFile = siteFile(s3proxy);
      Path[] expected = new Path[2];
      try (HostAgent primary = agent("primary", siteFile)) {
        AgentClient p = TestCerts.operatorClient(primary);
        p.createVm(vm, List.of(4 * MIB, 3 * MIB));
        qemuIo(primary.nbdUri(vm, "disk0"), "write -P 0x31 0 2M").assertOk();
        qemuIo(primary.nbdUri(vm, "disk1"), "write -P 0x32 1M 1M").assertOk();
        while (!p.bucketInitial(vm, "cloud", Duration.ofSeconds(10), null).finished()) {
          // another bounded step
        }
        for (int i = 0; i < 2; i++) {
          expected[i] = Files.copy(primary.diskImage(vm, "disk" + i), dir.resolve(i + ".raw"));
        }
      }
      List<String> options = List.of("--object-store", "cloud=" + siteFile);
      Path data = dir.resolve("cloud");
      PromoteResult wanted = new PromoteResult(vm, "primary", MIB);
      AgentProcess host = AgentProcess.start("cloud", data,
          List.of("-D" + io.siterecovery.agent.FaultInjection.PROPERTY + "=" + step), Map.of(),
          options);
      try {
        AgentClient c = host.client();
        c.recoverFromBucket(vm, new RecoverFromBucketRequest("cloud",
            BucketShipper.bucketVmId(vm), null, false));
        RecoveryWaits.awaitComplete(c, vm);
        qemuIo(host.nbdUri(vm, "disk1"), "write -P 0x77 2M 4k").assertOk();
        RecoveryWaits.writeImage(expected[1], 2 * MIB, 4 << 10, (byte) 0x77);
        assertThatThrownBy(() -> c.promoteBucketRecovery(vm, "primary", null))
            .as("the commit of a host that halts at %s", step);
        assertThat(host.awaitExit(Duration.ofSeconds(30)))
            .isEqualTo(io.siterecovery.agent.FaultInjection.EXIT_STATUS);
        assertThat(host.output()).contains("CRASH AT " + step.replaceAll(":.*", ""));
      } finally {
        host.close();
      }

      host = AgentProcess.start("cloud", data, List.of(), Map.of(), options);
      try {
        AgentClient c = host.client();
        boolean recovery = step.equals("bucket-promote-offline");
        if (recovery) {
          assertThat(c.recoveryProgress(vm).complete()).as("the recovery, reloaded").isTrue();
          assertThat(c.listVms()).isEmpty();
        } else {
          // finished at start from the intent, before the commit is asked again
          assertThat(c.getVm(vm).role()).isEqualTo(VmRecord.Role.PRIMARY);
          assertThatThrownBy(() -> c.recoveryProgress(vm))
              .isInstanceOfSatisfying(AgentException.class,
                  e -> assertThat(e.code()).isEqualTo(ErrorCode.VM_NOT_FOUND));
        }
        assertThat(c.promoteBucketRecovery(vm, "primary", null)).isEqualTo(wanted);
        VmRecord adopted = c.getVm(vm);
        assertThat(adopted.role()).isEqualTo(VmRecord.Role.PRIMARY);
        assertThat(adopted.power()).isEqualTo(VmRecord.Power.RUNNING);
        assertThat(adopted.protection()).isEqualTo(new SourceProtection("primary", false));
        assertThat(data.resolve("bucket-recoveries/" + vm)).doesNotExist();
        assertThat(c.sourceStatus(vm).resyncRequiredReason()).as("the images' moves are no"
            + " change made behind the agent's back").isNull();
        for (int i = 0; i < 2; i++) {
          compareRaw(expected[i].toString(), host.nbdUri(vm, "disk" + i)).assertOk();
        }
        System.out.printf("halted at %s: the restarted host had the %s, and the commit "
            + "answered %s%n", step, recovery ? "recovery" : "VM", wanted);
      } finally {
        host.close();
      }
    }
  }

  @Test
  void aSiteMayBeBothAPeerAndAnObjectStore() throws Exception {
    Path siteFile = Files.write(Files.createDirectories(dir.resolve("config"))
        .resolve("cloud.json"), Json.MAPPER.writeValueAsBytes(Map.of(
            "endpoint", "http://127.0.0.1:9", "region", "us-east-1", "bucket", "dr-replicas",
            "accessKeyFile", "s3.id", "secretKeyFile", "s3.secret", "kekFile", "kek.hex")));
    Files.writeString(dir.resolve("config/kek.hex"), "5e".repeat(32));
    Files.writeString(dir.resolve("config/s3.id"), "id");
    Files.writeString(dir.resolve("config/s3.secret"), "secret");
    HostAgent.Settings settings = new HostAgent.Settings("primary", dir.resolve("primary"),
        "127.0.0.1", 0, 0, TestCerts.site("primary"), Map.of("cloud", "https://127.0.0.1:9"),
        HostAgent.Settings.LOOPBACK, false, null, null,
        Map.of("cloud", ObjectStoreSite.load("cloud", siteFile)));
    assertThat(settings.peers()).containsOnlyKeys("cloud");
    assertThat(settings.objectStores()).containsOnlyKeys("cloud");
  }

  /**
   * A VM {@code vm} of {@code size} on {@code primary} with data, shipped to the bucket (an
   * initial copy and a cycle); answers a copy of its image at the last point.
   */
  private Path ship(HostAgent primary, String vm, long size) throws Exception {
    AgentClient p = TestCerts.operatorClient(primary);
    p.createVm(vm, List.of(size));
    String nbd = primary.nbdUri(vm, "disk0");
    qemuIo(nbd, "write -P 0x21 0 1536k", "write -P 0x22 2M 512k").assertOk();
    while (!p.bucketInitial(vm, "cloud", Duration.ofSeconds(10), null).finished()) {
      // another bounded step
    }
    qemuIo(nbd, "write -P 0x23 2M 64k").assertOk();
    p.bucketCycle(vm, "cloud", null);
    return Files.copy(primary.diskImage(vm, "disk0"), dir.resolve(vm + ".raw"));
  }

  private static UnaryOperator<BlobStore> gated(GatedBlobStore[] gate, String bucketVmId) {
    return backend -> gate[0] = new GatedBlobStore(backend, key -> key.contains("vms/"
        + bucketVmId + "/disk-") && key.substring(key.lastIndexOf('/') + 1)
        .startsWith("chunk-"));
  }

  private HostAgent agent(String site, Path siteFile) throws Exception {
    return new HostAgent(new HostAgent.Settings(site, dir.resolve(site), "127.0.0.1", 0, 0,
        TestCerts.site(site), Map.of(), HostAgent.Settings.LOOPBACK, false, null, null,
        Map.of("cloud", ObjectStoreSite.load("cloud", siteFile))));
  }

  private Path siteFile(S3ProxyServer s3proxy) throws Exception {
    return s3proxy.siteFile(dir.resolve("config"), 0x5e, CHUNK);
  }
}
