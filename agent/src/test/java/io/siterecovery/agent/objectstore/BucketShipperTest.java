package io.siterecovery.agent.objectstore;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.tuple;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.BucketMessages.BucketCycleResult;
import io.siterecovery.agent.api.BucketMessages.BucketDisk;
import io.siterecovery.agent.api.BucketMessages.BucketInitialProgress;
import io.siterecovery.agent.api.BucketMessages.BucketPoint;
import io.siterecovery.agent.api.BucketMessages.BucketPoints;
import io.siterecovery.agent.api.BucketMessages.BucketPruneResult;
import io.siterecovery.agent.objectstore.ship.BucketShipper;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testing.AgentProcess;
import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.vm.QuiesceHooks;
import io.siterecovery.agent.vm.QuiesceHooks.Hook;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.ThrowingConsumer;
import org.junit.jupiter.api.io.TempDir;

/**
 * A VM protected to an object-store site through the agent's HTTPS routes: the initial copy in
 * bounded, resumable steps with writes through NBD before, between and after them, delta cycles,
 * retention; each point rebuilt from the bucket and judged by {@code qemu-img compare} against
 * the source image as it was at that point. s3proxy runs in process on a filesystem backend.
 */
class BucketShipperTest {
  private static final int CHUNK = 64 << 10;
  private static final long MIB = 1L << 20;
  private static final String PREFIX = "dr/";
  private static final byte[] KEK = bytes(32, 7);

  @TempDir
  static Path bucketDir;
  @TempDir
  static Path configDir;
  private static S3ProxyServer s3proxy;
  private static S3ObjectStore store;
  private static Path siteFile;

  @TempDir
  Path dir;

  @BeforeAll
  static void startS3Proxy() throws Exception {
    s3proxy = S3ProxyServer.start(bucketDir);
    store = s3proxy.store(PREFIX);
    siteFile = siteFile("cloud.json", Map.of());
  }

  @AfterAll
  static void stopS3Proxy() throws Exception {
    store.close();
    s3proxy.close();
  }

  /** The test's site file, with {@code changes} (a null value removes the field). */
  private static Path siteFile(String name, Map<String, Object> changes) throws IOException {
    Map<String, Object> fields = new HashMap<>(Map.of("chunkSize", CHUNK));
    fields.putAll(changes);
    return s3proxy.siteFile(configDir, name, KEK, fields);
  }

  private HostAgent startAgent(Path data) throws IOException {
    return startAgent(data, siteFile);
  }

  private HostAgent startAgent(Path data, Path siteFile) throws IOException {
    return new HostAgent(new HostAgent.Settings("primary", data, "127.0.0.1", 0, 0,
        TestCerts.site("primary"), Map.of(), HostAgent.Settings.LOOPBACK, false, null, null,
        Map.of("cloud", ObjectStoreSite.load("cloud", siteFile))));
  }

  private static BucketReplica bucket(String vm, Path scratch) {
    return new BucketReplica(store, new SealedObjects(new KeyEncryptionKey(KEK)),
        BucketShipper.bucketVmId(vm), CHUNK, 4, scratch);
  }

  @Test
  void aVmProtectedToTheBucketThroughTheRoutesMaterializesAsItWasAtEachPoint() throws Exception {
    assumeInstalled("qemu-io", "qemu-img", "curl");
    long size = 8 * MIB;
    try (HostAgent agent = startAgent(dir.resolve("primary"))) {
      AgentClient operator = TestCerts.operatorClient(agent);
      operator.createVm("web01", List.of(size));
      String nbd = agent.nbdUri("web01", "disk0");
      Path image = agent.diskImage("web01", "disk0");
      Path random = Files.write(dir.resolve("random.bin"), bytes((int) (3 * MIB), 1));
      // before the copy: data with holes
      qemuIo(nbd, "write -s " + random + " 0 3M", "write -P 0x11 5M 512k").assertOk();

      // The copy in bounded steps (a 1 MB/s cap and a 400 ms budget), the guest writing between
      // them behind the copy's cursor, across it and ahead of it.
      Random rnd = new Random(3);
      List<BucketInitialProgress> steps = new ArrayList<>();
      BucketInitialProgress step;
      do {
        long started = System.nanoTime();
        step = operator.bucketInitial("web01", "cloud", Duration.ofMillis(400), 1.0);
        assertThat(Duration.ofNanos(System.nanoTime() - started)).as("a bounded step")
            .isLessThan(Duration.ofSeconds(3));
        steps.add(step);
        assertThat(steps.size()).as("steps").isLessThan(200);
        if (!step.finished()) {
          long at = step.doneBytes();
          qemuIo(nbd, "write -P " + (1 + rnd.nextInt(250)) + " "
                  + Math.min(size - 4096, rnd.nextLong(Math.max(1, at / 512)) * 512) + " 4k",
              "write -P 0x5a " + Math.min(size - 8192, at + rnd.nextInt(4) * 512L) + " 8k")
              .assertOk();
        }
      } while (!step.finished());
      assertThat(steps.size()).as("the copy took several bounded steps").isGreaterThan(3);
      for (int i = 1; i < steps.size(); i++) {
        assertThat(steps.get(i).doneChunks()).isGreaterThanOrEqualTo(steps.get(i - 1).doneChunks());
        assertThat(steps.get(i).skippedChunks()).isEqualTo(steps.get(i - 1).doneChunks());
      }
      assertThat(step.totalChunks()).isEqualTo(size / CHUNK);
      assertThat(step.pointId()).isEqualTo(1L);
      List<Path> expected = new ArrayList<>();
      expected.add(snapshot(image, "point1.img"));

      qemuIo(nbd, "write -P 0x77 1M 300k", "write -z 2M 1M", "write -P 0x78 7M 1M",
          "discard 0 64k").assertOk();
      BucketCycleResult first = operator.bucketCycle("web01", "cloud", 10.0);
      assertThat(first.pointId()).isEqualTo(2);
      assertThat(first.logsShipped()).isEqualTo(1);
      assertThat(first.bytesShipped()).isGreaterThan(1300L << 10);
      expected.add(snapshot(image, "point2.img"));

      qemuIo(nbd, "write -P 0x79 4M 64k").assertOk();
      assertThat(operator.bucketCycle("web01", "cloud", null).pointId()).isEqualTo(3);
      expected.add(snapshot(image, "point3.img"));

      assertThat(operator.bucketPoints("web01", "cloud").points())
          .extracting(BucketPoint::pointId).containsExactly(1L, 2L, 3L);
      // the monitor sees what went to the bucket, as for a peer
      TestCerts.credentials(Identity.monitor());
      List<String> curl = new ArrayList<>(io.siterecovery.agent.testing.Curl.as(TestCerts.dir(),
          "monitor"));
      curl.add(agent.url() + "/metrics");
      String scrape = io.siterecovery.agent.testing.Curl.run(curl).body();
      assertThat(shipped(scrape, "ranges")).isGreaterThan(3 * MIB);
      assertThat(shipped(scrape, "log")).isGreaterThan(1300L << 10);
      BucketReplica bucket = bucket("web01", dir.resolve("scratch"));
      for (int point = 1; point <= 3; point++) {
        assertMaterializes(bucket, point, expected.get(point - 1));
      }
      // Control: the oracle tells points apart.
      Path out = dir.resolve("control.img");
      bucket.materialize(1, 0, out);
      compareRaw(out.toString(), expected.get(2).toString()).assertFailed();

      // Retention: keep 2 and 3; 1 goes, 2 and 3 still materialize.
      BucketPruneResult pruned = operator.bucketPrune("web01", "cloud", List.of(3L, 2L));
      assertThat(pruned.droppedPoints()).containsExactly(1L);
      assertThat(pruned.keptPoints()).containsExactly(2L, 3L);
      assertThat(operator.bucketPoints("web01", "cloud").points())
          .extracting(BucketPoint::pointId).containsExactly(2L, 3L);
      assertMaterializes(bucket, 2, expected.get(1));
      assertMaterializes(bucket, 3, expected.get(2));
      assertThatThrownBy(() -> operator.bucketPrune("web01", "cloud", List.of(1L)))
          .isInstanceOfSatisfying(AgentException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.BAD_REQUEST));
    }
  }

  @Test
  void anAgentKilledDuringTheInitialCopyResumesWithoutSendingStoredChunksAgain()
      throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    long size = 16 * MIB;
    Path data = dir.resolve("primary");
    List<String> options = List.of("--object-store", "cloud=" + siteFile);
    AgentProcess agent = AgentProcess.start("primary", data, List.of(), Map.of(), options);
    String vmId = BucketShipper.bucketVmId("crash01");
    Path chunks = s3proxy.objectFile(PREFIX + "vms/" + vmId + "/disk-0");
    Map<Path, FileTime> beforeKill;
    try {
      AgentClient operator = agent.client();
      operator.createVm("crash01", List.of(size));
      Path random = Files.write(dir.resolve("random.bin"), bytes((int) (12 * MIB), 2));
      qemuIo(agent.nbdUri("crash01", "disk0"), "write -s " + random + " 0 12M").assertOk();
      // One long, slow step (1 MB/s), killed part-way.
      CompletableFuture<BucketInitialProgress> step = CompletableFuture.supplyAsync(() ->
          operator.bucketInitial("crash01", "cloud", Duration.ofSeconds(60), 1.0));
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (chunkFiles(chunks).size() < 40) {
        assertThat(System.nanoTime()).as("40 chunks stored").isLessThan(deadline);
        assertThat(step).as("the step still runs").isNotDone();
        Thread.onSpinWait();
      }
      agent.kill();
      assertThat(step).failsWithin(Duration.ofSeconds(30));
      beforeKill = mtimes(chunks);
    } finally {
      agent.close();
    }
    // Nothing committed yet: no manifest names any object the killed run wrote.
    BucketAudit atKill = audit("crash01");
    assertThat(atKill.points()).isEmpty();
    assertThat(atKill.unreferenced()).as("objects the killed run left").hasSize(beforeKill.size());

    agent = AgentProcess.start("primary", data, List.of(), Map.of(), options);
    try {
      AgentClient operator = agent.client();
      BucketInitialProgress step = operator.bucketInitial("crash01", "cloud",
          Duration.ofSeconds(60), null);
      assertThat(step.finished()).isTrue();
      assertThat(step.skippedChunks()).as("chunks found durable")
          .isGreaterThanOrEqualTo(beforeKill.size() - 4L);
      Map<Path, FileTime> after = mtimes(chunks);
      long resent = beforeKill.entrySet().stream()
          .filter(e -> !e.getValue().equals(after.get(e.getKey()))).count();
      // at most the uploads in flight when it died, whose lines were not yet forced
      assertThat(resent).as("chunks sent again").isLessThanOrEqualTo(4);
      assertThat(after).hasSize((int) (12 * MIB / CHUNK));
      assertThat(step.chunksSent()).isEqualTo(192 - step.skippedChunks());
      Path expected = snapshot(data.resolve("vms/crash01/disk0.img"), "crash01.img");
      assertMaterializes(bucket("crash01", dir.resolve("scratch")), 1, expected);
      // Chunk names are the chunk's index and generation: whatever the killed run stored (even
      // an upload it did not get to record) is the resumed copy's object by that name, named by
      // point 1; nothing is left over for a prune.
      BucketAudit resumed = audit("crash01");
      assertThat(resumed.points()).containsExactly(1L);
      assertThat(resumed.referenced()).containsAll(atKill.dataObjects());
      assertThat(resumed.unreferenced()).isEmpty();
      assertThat(resumed.unreadable()).isEmpty();
      System.out.printf("source agent killed after %d of 192 chunks stored (%d did not "
          + "authenticate): resumed with %d skipped, %d sent again%n", atKill.dataObjects().size(),
          atKill.unreadable().size(), step.skippedChunks(), resent);
    } finally {
      agent.close();
    }
  }

  @Test
  void anAgentKilledBetweenACyclesLogsAndItsManifestLeavesNoPointNamingAMissingObject()
      throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    Path data = dir.resolve("primary");
    List<String> options = List.of("--object-store", "cloud=" + siteFile);
    ObjectNames names = new ObjectNames(BucketShipper.bucketVmId("cyc01"));
    AgentProcess agent = AgentProcess.start("primary", data, List.of(), Map.of(), options);
    BucketAudit atKill;
    String orphan;
    try {
      AgentClient operator = agent.client();
      operator.createVm("cyc01", List.of(4 * MIB, 8 * MIB));
      qemuIo(agent.nbdUri("cyc01", "disk0"), "write -P 0x21 0 1M").assertOk();
      assertThat(operator.bucketInitial("cyc01", "cloud", Duration.ofSeconds(60), null)
          .finished()).isTrue();
      qemuIo(agent.nbdUri("cyc01", "disk0"), "write -P 0x22 2M 64k").assertOk();
      Path random = Files.write(dir.resolve("random.bin"), bytes((int) (6 * MIB), 4));
      qemuIo(agent.nbdUri("cyc01", "disk1"), "write -s " + random + " 1M 6M").assertOk();
      // Capped at 1 MB/s: disk 0's small log goes at once, disk 1's 6 MiB waits for its tokens;
      // the agent dies in between, before the point's manifest.
      Set<String> point1 = audit("cyc01").dataObjects();
      CompletableFuture<BucketCycleResult> cycle = CompletableFuture.supplyAsync(() ->
          operator.bucketCycle("cyc01", "cloud", 1.0));
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      List<String> logs;
      while ((logs = store.list(names.vmPrefix()).stream()
          .filter(k -> names.isDataObject(k) && k.contains("/disk-0/log-")
              && !point1.contains(k)).toList()).isEmpty()) {
        assertThat(System.nanoTime()).as("disk 0's log stored").isLessThan(deadline);
        assertThat(cycle).as("the cycle still runs").isNotDone();
        Thread.onSpinWait();
      }
      orphan = logs.get(0);
      agent.kill();
      assertThat(cycle).failsWithin(Duration.ofSeconds(30));
      atKill = audit("cyc01");
    } finally {
      agent.close();
    }
    assertThat(atKill.points()).as("the cycle's point was not committed").containsExactly(1L);
    assertThat(atKill.unreferenced()).as("what the killed cycle left").containsExactly(orphan);

    agent = AgentProcess.start("primary", data, List.of(), Map.of(), options);
    try {
      AgentClient operator = agent.client();
      BucketCycleResult again = operator.bucketCycle("cyc01", "cloud", null);
      assertThat(again.pointId()).isEqualTo(2);
      // The log's name is its disk and generation: the cycle after the restart ships the same
      // sealed generation under the same name, and point 2 names it.
      BucketAudit resumed = audit("cyc01");
      assertThat(resumed.points()).containsExactly(1L, 2L);
      assertThat(resumed.referenced()).contains(orphan);
      assertThat(resumed.unreferenced()).isEmpty();
      BucketReplica bucket = bucket("cyc01", dir.resolve("scratch"));
      for (int disk = 0; disk < 2; disk++) {
        Path expected = snapshot(data.resolve("vms/cyc01/disk" + disk + ".img"),
            "cyc01-" + disk + ".img");
        Path out = dir.resolve("cyc01-" + disk + "-materialized.img");
        bucket.materialize(2, disk, out);
        compareRaw(expected.toString(), out.toString()).assertOk();
      }
      // Retention folds the logs into chunks and leaves nothing no point names.
      operator.bucketPrune("cyc01", "cloud", List.of(2L));
      BucketAudit pruned = audit("cyc01");
      assertThat(pruned.points()).containsExactly(2L);
      assertThat(pruned.unreferenced()).isEmpty();
      System.out.printf("source agent killed between a cycle's logs and its manifest (%s "
          + "stored, not named): the cycle after the restart shipped %d logs, %d bytes, for "
          + "64 KiB and 6 MiB written%n", orphan.substring(orphan.lastIndexOf('/') + 1),
          again.logsShipped(), again.bytesShipped());
    } finally {
      agent.close();
    }
  }

  @Test
  void pointsOfAnotherVmOfTheSameNameDoNotPassForACopy() throws Exception {
    try (HostAgent first = startAgent(dir.resolve("first"))) {
      AgentClient operator = TestCerts.operatorClient(first);
      operator.createVm("dup01", List.of(MIB));
      writeBeforeProtection(first, "dup01");
      assertThat(operator.bucketInitial("dup01", "cloud", Duration.ofSeconds(30), null)
          .finished()).isTrue();
    }
    try (HostAgent second = startAgent(dir.resolve("second"))) {
      AgentClient operator = TestCerts.operatorClient(second);
      operator.createVm("dup01", List.of(MIB));
      assertThatThrownBy(() -> operator.bucketInitial("dup01", "cloud", null, null))
          .isInstanceOfSatisfying(AgentException.class, e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE);
            assertThat(e.getMessage()).contains("already holds recovery points of VM dup01");
          });
      assertThat(operator.getVm("dup01").protection()).isNull();
    }
  }

  @Test
  void anyAgentOfTheSiteListsAVmsPointsFromTheBucketWithoutTheVm() throws Exception {
    assumeInstalled("qemu-io");
    BucketPoints atTheSource;
    try (HostAgent source = startAgent(dir.resolve("primary"))) {
      AgentClient operator = TestCerts.operatorClient(source);
      operator.createVm("list01", List.of(MIB));
      writeBeforeProtection(source, "list01");
      assertThat(operator.bucketInitial("list01", "cloud", Duration.ofSeconds(30), null)
          .finished()).isTrue();
      qemuIo(source.nbdUri("list01", "disk0"), "write -P 0x41 0 4k").assertOk();
      operator.bucketCycle("list01", "cloud", null);
      atTheSource = operator.bucketPoints("list01", "cloud");
    }
    // the source is gone; the recovery host, which has no VM list01, answers from the bucket
    try (HostAgent recoveryHost = new HostAgent(new HostAgent.Settings("cloud",
        dir.resolve("cloud"), "127.0.0.1", 0, 0, TestCerts.site("cloud"), Map.of(),
        HostAgent.Settings.LOOPBACK, false, null, null,
        Map.of("cloud", ObjectStoreSite.load("cloud", siteFile))))) {
      AgentClient operator = TestCerts.operatorClient(recoveryHost);
      BucketPoints fromTheBucket = operator.bucketSitePoints("cloud", "list01");
      assertThat(fromTheBucket).isEqualTo(atTheSource);
      assertThat(fromTheBucket.points()).extracting(BucketPoint::pointId).containsExactly(1L, 2L);
      assertThat(fromTheBucket.disks()).as("as a VM recovered from point 2 exports them")
          .containsExactly(new BucketDisk("disk0", MIB));
      assertThat(fromTheBucket.bucketVmId()).isEqualTo(BucketShipper.bucketVmId("list01"));
      assertThat(operator.bucketSitePoints("cloud", "never01").points()).isEmpty();
      assertThat(operator.bucketSitePoints("cloud", "never01").disks()).isEmpty();
      assertThatThrownBy(() -> operator.bucketSitePoints("nowhere", "list01"))
          .isInstanceOfSatisfying(AgentException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.BAD_REQUEST));
      assertThatThrownBy(() -> operator.bucketSitePoints("cloud", "x".repeat(64)))
          .isInstanceOfSatisfying(AgentException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.BAD_REQUEST));
      assertThatThrownBy(() -> TestCerts.clientAs(Identity.site("primary"), recoveryHost)
          .bucketSitePoints("cloud", "list01")).isInstanceOfSatisfying(AgentException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.FORBIDDEN));
      assertThat(recoveryHost.vms().list()).isEmpty();
    }
  }

  /**
   * App-consistent points in a bucket, as on a peer: asked to quiesce, the cycle runs the VM's
   * hook before it seals; the point is app-consistent when the hook succeeded, in its manifest
   * (so any agent of the site lists it so), and otherwise crash-consistent with the reason. A
   * prune's rewrite of a point keeps the mark.
   */
  @Test
  void aQuiescedCycleCommitsAnAppConsistentPointAndAFailedHookSaysWhyNot() throws Exception {
    assumeInstalled("qemu-io");
    Path data = dir.resolve("primary");
    try (HostAgent source = startAgent(data)) {
      AgentClient operator = TestCerts.operatorClient(source);
      operator.createVm("app01", List.of(MIB));
      writeBeforeProtection(source, "app01");
      assertThat(operator.bucketInitial("app01", "cloud", Duration.ofSeconds(30), null)
          .finished()).isTrue();

      BucketCycleResult noHook = operator.bucketCycle("app01", "cloud", null, true);
      assertThat(noHook.appConsistent()).isFalse();
      assertThat(noHook.quiesceMessage()).contains("app01 has no quiesce hook");

      Path ran = dir.resolve("hook-ran");
      QuiesceHooks.set(data, "app01", new Hook(List.of("touch", ran.toString()), 10));
      qemuIo(source.nbdUri("app01", "disk0"), "write -P 0x41 0 4k").assertOk();
      BucketCycleResult quiesced = operator.bucketCycle("app01", "cloud", null, true);
      assertThat(quiesced.appConsistent()).isTrue();
      assertThat(quiesced.quiesceMessage()).isNull();
      assertThat(ran).as("the hook ran").exists();

      QuiesceHooks.set(data, "app01", new Hook(List.of("false"), 10));
      BucketCycleResult hookFailed = operator.bucketCycle("app01", "cloud", null, true);
      assertThat(hookFailed.appConsistent()).isFalse();
      assertThat(hookFailed.quiesceMessage()).contains("exited with status 1");
      BucketCycleResult notAsked = operator.bucketCycle("app01", "cloud", null);
      assertThat(notAsked.appConsistent()).isFalse();
      assertThat(notAsked.quiesceMessage()).as("no quiesce asked, none reported").isNull();

      assertThat(operator.bucketPoints("app01", "cloud").points())
          .extracting(BucketPoint::pointId, BucketPoint::appConsistent)
          .containsExactly(tuple(1L, false), tuple(2L, false), tuple(quiesced.pointId(), true),
              tuple(4L, false), tuple(5L, false));
      // every kept point is rewritten (revision 1) from the folded base; 3 stays app-consistent
      operator.bucketPrune("app01", "cloud", List.of(3L, 4L, 5L));
      assertThat(operator.bucketPoints("app01", "cloud").points())
          .extracting(BucketPoint::pointId, BucketPoint::revision, BucketPoint::appConsistent)
          .containsExactly(tuple(3L, 1, true), tuple(4L, 1, false), tuple(5L, 1, false));
    }
  }

  @Test
  void aBucketThatLostTheVmsPointsGetsTheCopyAgainInsteadOfACycle() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    try (HostAgent agent = startAgent(dir.resolve("primary"))) {
      AgentClient operator = TestCerts.operatorClient(agent);
      operator.createVm("wipe01", List.of(MIB));
      writeBeforeProtection(agent, "wipe01");
      assertThat(operator.bucketInitial("wipe01", "cloud", Duration.ofSeconds(30), null)
          .finished()).isTrue();
      String nbd = agent.nbdUri("wipe01", "disk0");
      qemuIo(nbd, "write -P 0x31 0 4k").assertOk();
      assertThat(operator.bucketCycle("wipe01", "cloud", null).pointId()).isEqualTo(2);
      ObjectNames names = new ObjectNames(BucketShipper.bucketVmId("wipe01"));
      for (String key : store.list(names.vmPrefix())) {
        // the filesystem backend also lists its folders, whose deletion takes it 10 s
        if (names.isDataObject(key) || names.parseManifest(key).isPresent()) {
          store.delete(key);
        }
      }
      qemuIo(nbd, "write -P 0x32 512k 4k").assertOk();

      assertThatThrownBy(() -> operator.bucketCycle("wipe01", "cloud", null))
          .isInstanceOfSatisfying(AgentException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE));
      BucketInitialProgress again = operator.bucketInitial("wipe01", "cloud",
          Duration.ofSeconds(30), null);
      assertThat(again.finished()).isTrue();
      assertThat(again.skippedChunks()).isZero();
      Path expected = snapshot(agent.diskImage("wipe01", "disk0"), "wipe01.img");
      assertMaterializes(bucket("wipe01", dir.resolve("scratch")), 1, expected);
      assertThat(operator.bucketCycle("wipe01", "cloud", null).pointId()).isEqualTo(2);
    }
  }

  @Test
  void aCappedStepWithLargeChunksStillAnswersAboutOnTime() throws Exception {
    Path bigChunks = siteFile("big-chunks.json", Map.of("chunkSize", 1 << 20));
    try (HostAgent agent = startAgent(dir.resolve("primary"), bigChunks)) {
      AgentClient operator = TestCerts.operatorClient(agent);
      operator.createVm("capped01", List.of(16 * MIB));
      try (java.nio.channels.FileChannel image = java.nio.channels.FileChannel.open(
          agent.diskImage("capped01", "disk0"), java.nio.file.StandardOpenOption.WRITE)) {
        image.write(java.nio.ByteBuffer.wrap(bytes((int) (16 * MIB), 4)), 0);
      }
      // the first step protects the VM and opens the store's connections
      operator.bucketInitial("capped01", "cloud", Duration.ofMillis(1), null);
      long started = System.nanoTime();
      BucketInitialProgress step = operator.bucketInitial("capped01", "cloud",
          Duration.ofMillis(1000), 1.0);
      Duration took = Duration.ofNanos(System.nanoTime() - started);
      // 1 MB/s leaves room for one 1 MiB chunk in flight: the budget, that chunk's pacing and
      // upload; eight in flight would take eight seconds
      assertThat(took).as("a capped step").isLessThan(Duration.ofMillis(3500));
      assertThat(step.finished()).isFalse();
      assertThat(step.chunksSent()).isBetween(1L, 2L);
    }
  }

  /** Some data on the VM's disk, written to its image before it is protected. */
  private static void writeBeforeProtection(HostAgent agent, String vm) throws IOException {
    try (java.nio.channels.FileChannel image = java.nio.channels.FileChannel.open(
        agent.diskImage(vm, "disk0"), java.nio.file.StandardOpenOption.WRITE)) {
      image.write(java.nio.ByteBuffer.wrap(bytes(CHUNK, 9)), CHUNK);
    }
  }

  @Test
  void aPeerSiteIsRefusedOnEveryBucketRoute() throws Exception {
    try (HostAgent agent = startAgent(dir.resolve("primary"))) {
      TestCerts.operatorClient(agent).createVm("web02", List.of(MIB));
      AgentClient peer = TestCerts.clientAs(Identity.site("secondary"), agent);
      List<ThrowingConsumer<AgentClient>> calls = List.of(
          c -> c.bucketInitial("web02", "cloud", null, null),
          c -> c.bucketCycle("web02", "cloud", null),
          c -> c.bucketResync("web02", "cloud", null, null),
          c -> c.bucketPoints("web02", "cloud"),
          c -> c.bucketSitePoints("cloud", "web02"),
          c -> c.bucketPrune("web02", "cloud", List.of(1L)));
      for (ThrowingConsumer<AgentClient> call : calls) {
        assertThatThrownBy(() -> call.accept(peer)).isInstanceOfSatisfying(AgentException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.FORBIDDEN));
      }
      // and nothing happened: the VM is not protected
      assertThat(TestCerts.operatorClient(agent).getVm("web02").protection()).isNull();
    }
  }

  @Test
  void boundsOfTheRoutesAreChecked() throws Exception {
    try (HostAgent agent = startAgent(dir.resolve("primary"))) {
      AgentClient operator = TestCerts.operatorClient(agent);
      operator.createVm("web03", List.of(MIB));
      Function<ThrowingConsumer<AgentClient>, ErrorCode> code = call -> {
        try {
          call.accept(operator);
          return null;
        } catch (AgentException e) {
          return e.code();
        } catch (Throwable t) {
          throw new AssertionError(t);
        }
      };
      assertThat(code.apply(c -> c.bucketInitial("web03", "cloud", Duration.ofHours(1), null)))
          .isEqualTo(ErrorCode.BAD_REQUEST);
      assertThat(code.apply(c -> c.bucketInitial("web03", "cloud", null, -1.0)))
          .isEqualTo(ErrorCode.BAD_REQUEST);
      assertThat(code.apply(c -> c.bucketInitial("web03", "nowhere", null, null)))
          .isEqualTo(ErrorCode.BAD_REQUEST);
      assertThat(code.apply(c -> c.bucketPrune("web03", "cloud", List.of())))
          .isEqualTo(ErrorCode.BAD_REQUEST);
      // refused before anything changed: the VM is not protected
      assertThat(operator.getVm("web03").protection()).isNull();
      assertThat(code.apply(c -> c.bucketCycle("web03", "cloud", null)))
          .isEqualTo(ErrorCode.INVALID_STATE);
    }
  }

  @Test
  void aBadObjectStoreFileIsRefusedNamingTheFieldAndNeverTheSecret() throws Exception {
    Map<String, String> refusals = Map.of(
        "bucket", "field 'bucket'",
        "endpoint", "field 'endpoint'",
        "kekFile", "field 'kekFile'",
        "region", "field 'region'",
        "prefix", "field 'prefix'");
    Map<String, Object> bad = Map.of("bucket", "Not_A_Bucket", "endpoint", "ftp://x",
        "kekFile", "s3.id", "region", "", "prefix", "/abs");
    for (Map.Entry<String, String> r : refusals.entrySet()) {
      Path file = siteFile("bad-" + r.getKey() + ".json", Map.of(r.getKey(), bad.get(r.getKey())));
      assertThatThrownBy(() -> ObjectStoreSite.load("cloud", file))
          .hasMessageContaining(r.getValue());
    }
    Map<String, Object> noKek = new HashMap<>();
    noKek.put("kekFile", null);
    assertThatThrownBy(() -> ObjectStoreSite.load("cloud", siteFile("no-kek.json", noKek)))
        .hasMessageContaining("field 'kekFile': is required");
    assertThatThrownBy(() -> ObjectStoreSite.load("cloud",
        siteFile("unknown.json", Map.of("secretKey", "inline"))))
        .hasMessageContaining("field 'secretKey' is not known");
    Map<String, Object> fromEnv = new HashMap<>();
    fromEnv.put("secretKeyFile", null);
    fromEnv.put("secretKeyEnv", "SR_TEST_SECRET");
    Path envFile = siteFile("env.json", fromEnv);
    assertThatThrownBy(() -> ObjectStoreSite.load("cloud", envFile, name -> null))
        .hasMessageContaining("field 'secretKeyEnv'");
    assertThatThrownBy(() -> ObjectStoreSite.load("cloud", envFile,
        name -> "a secret with spaces")).hasMessageContaining("field 'secretKeyEnv'")
        .hasMessageNotContaining("secret with");
    ObjectStoreSite site = ObjectStoreSite.load("cloud", envFile, name -> "the-secret-value");
    assertThat(site.config().secretAccessKey()).isEqualTo("the-secret-value");
    assertThat(site.toString()).doesNotContain("the-secret-value")
        .doesNotContain(S3ProxyServer.ACCESS_KEY).doesNotContain(HexFormat.of().formatHex(KEK));
  }

  @Test
  void anAgentGivenABadObjectStoreFileDoesNotStartAndNamesTheField() throws Exception {
    Path file = siteFile("bad-start.json", Map.of("region", "Not A Region"));
    io.siterecovery.agent.testing.Tools.Result run = AgentProcess.runUntilExit("primary",
        dir.resolve("primary"), List.of(), List.of("--object-store", "cloud=" + file));
    assertThat(run.exitCode()).isEqualTo(2);
    assertThat(run.output()).contains("object store 'cloud'").contains("field 'region'")
        .doesNotContain(S3ProxyServer.SECRET_KEY);
  }

  /**
   * Taking up a bucket's points again is for the VM whose points they are, back from a failover
   * to that site; the fenced-copy delete removes nothing but a fenced copy.
   */
  @Test
  void reattachAndTheFencedCopyDeleteRefuseWhatTheyAreNotFor() throws Exception {
    try (HostAgent agent = startAgent(dir.resolve("primary"))) {
      AgentClient operator = TestCerts.operatorClient(agent);
      operator.createVm("ra01", List.of(2 * MIB));
      assertThatThrownBy(() -> operator.bucketReattach("ra01", "cloud"))
          .as("not protected to the site").isInstanceOfSatisfying(AgentException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE));
      while (!operator.bucketInitial("ra01", "cloud", Duration.ofSeconds(3), null).finished()) {
        // bounded steps until point 1
      }
      var during = operator.bucketReattach("ra01", "cloud");
      assertThat(during.reattached()).as("its own protection, complete: nothing to take up")
          .isTrue();
      assertThat(during.points()).isEqualTo(1);
      assertThat(operator.sourceStatus("ra01").resyncRequiredReason())
          .as("no resync for a protection that never left").isNull();

      operator.createVm("ra02", List.of(2 * MIB));
      assertThatThrownBy(() -> operator.deleteFencedVm("ra02"))
          .as("a running primary").isInstanceOfSatisfying(AgentException.class, e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE);
            assertThat(e.getMessage()).contains("FAILED_OVER");
          });
      operator.setPower("ra02", VmRecord.Power.OFF);
      operator.setRole("ra02", VmRecord.Role.FAILED_OVER);
      operator.deleteFencedVm("ra02");
      assertThat(operator.listVms()).noneMatch(v -> v.name().equals("ra02"));
      assertThat(dir.resolve("primary/vms/ra02")).doesNotExist();
    }
  }

  /**
   * Ending a protection towards a bucket drops its replica there, as a peer drops its own: every
   * object of the VM goes, points first, and a new protection copies the VM afresh.
   */
  @Test
  void disablingAProtectionTowardsTheBucketDeletesTheVmsObjectsAndAllowsAFreshCopy()
      throws Exception {
    try (HostAgent agent = startAgent(dir.resolve("primary"))) {
      AgentClient operator = TestCerts.operatorClient(agent);
      operator.createVm("off01", List.of(2 * MIB));
      operator.createVm("kept01", List.of(2 * MIB));
      for (String vm : List.of("off01", "kept01")) {
        while (!operator.bucketInitial(vm, "cloud", Duration.ofSeconds(3), null).finished()) {
          // bounded steps until point 1
        }
        operator.bucketCycle(vm, "cloud", null);
      }
      String prefix = "vms/" + BucketShipper.bucketVmId("off01") + "/";
      assertThat(store.list(prefix)).isNotEmpty();

      operator.disableProtection("off01");
      assertThat(store.list(prefix)).as("the VM's objects").isEmpty();
      assertThat(operator.getVm("off01").protection()).isNull();
      assertThat(bucket("kept01", dir.resolve("scratch")).pointIds())
          .as("another VM's points").containsExactly(1L, 2L);
      operator.disableProtection("off01"); // again: nothing left to do

      var again = operator.bucketInitial("off01", "cloud", Duration.ofSeconds(3), null);
      while (!again.finished()) {
        again = operator.bucketInitial("off01", "cloud", Duration.ofSeconds(3), null);
      }
      assertThat(again.pointId()).as("a fresh copy, not refused as an earlier protection's")
          .isEqualTo(1L);
    }
  }

  private static double shipped(String scrape, String kind) {
    return scrape.lines().filter(l -> l.startsWith("siterecovery_shipped_bytes_total{")
            && l.contains("vm=\"web01\"") && l.contains("kind=\"" + kind + "\""))
        .mapToDouble(l -> Double.parseDouble(l.substring(l.lastIndexOf(' ') + 1)))
        .findFirst().orElse(0);
  }

  private BucketAudit audit(String vm) throws IOException {
    return BucketAudit.of(store, new SealedObjects(new KeyEncryptionKey(KEK)),
        BucketShipper.bucketVmId(vm), dir.resolve("audit"));
  }

  private static void assertMaterializes(BucketReplica bucket, long point, Path expected)
      throws IOException {
    Path out = expected.resolveSibling("materialized-" + point + "-" + expected.getFileName());
    bucket.materialize(point, 0, out);
    compareRaw(expected.toString(), out.toString()).assertOk();
    Files.delete(out);
  }

  private Path snapshot(Path image, String name) throws IOException {
    return Files.copy(image, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
  }

  private static List<Path> chunkFiles(Path diskDir) throws IOException {
    if (!Files.isDirectory(diskDir)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(diskDir)) {
      return files.filter(f -> f.getFileName().toString().startsWith("chunk-")).toList();
    }
  }

  private static Map<Path, FileTime> mtimes(Path diskDir) throws IOException {
    Map<Path, FileTime> times = new HashMap<>();
    for (Path f : chunkFiles(diskDir)) {
      times.put(f, Files.getLastModifiedTime(f));
    }
    return times;
  }

  private static byte[] bytes(int size, long seed) {
    byte[] b = new byte[size];
    new Random(seed).nextBytes(b);
    return b;
  }
}
