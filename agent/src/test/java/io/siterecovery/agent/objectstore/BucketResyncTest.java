package io.siterecovery.agent.objectstore;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.BucketMessages.BucketResyncProgress;
import io.siterecovery.agent.objectstore.ship.BucketShipper;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.agent.resync.ResyncLedger;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testing.AgentProcess;
import io.siterecovery.agent.testing.TestCerts;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.function.Function;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.ThrowingConsumer;
import org.junit.jupiter.api.io.TempDir;

/**
 * A resync towards an object-store site through the agent's HTTPS routes: the bucket misses
 * writes (made to the image behind the tracker's back) and objects (deleted), a resync in bounded
 * steps with the guest writing between them stores the chunks that differ, and the point of the
 * next cycle, rebuilt from the bucket, equals the source image ({@code qemu-img compare}).
 * s3proxy runs in process on a filesystem backend, as in {@link BucketShipperTest}.
 */
class BucketResyncTest {
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
    siteFile = s3proxy.siteFile(configDir, "cloud.json", KEK, Map.of("chunkSize", CHUNK));
  }

  @AfterAll
  static void stopS3Proxy() throws Exception {
    store.close();
    s3proxy.close();
  }

  private HostAgent startAgent(Path data) throws IOException {
    return new HostAgent(new HostAgent.Settings("primary", data, "127.0.0.1", 0, 0,
        TestCerts.site("primary"), Map.of(), HostAgent.Settings.LOOPBACK, false, null, null,
        Map.of("cloud", ObjectStoreSite.load("cloud", siteFile))));
  }

  private static BucketReplica bucket(String vm, Path scratch) {
    return new BucketReplica(store, new SealedObjects(new KeyEncryptionKey(KEK)),
        BucketShipper.bucketVmId(vm), CHUNK, 4, scratch);
  }

  @Test
  void aResyncStoresOnlyTheChunksTheBucketMissedAndTheNextCyclesPointEqualsTheSource()
      throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    long size = 8 * MIB;
    try (HostAgent agent = startAgent(dir.resolve("primary"))) {
      AgentClient operator = TestCerts.operatorClient(agent);
      operator.createVm("rs01", List.of(size));
      String nbd = agent.nbdUri("rs01", "disk0");
      Path image = agent.diskImage("rs01", "disk0");
      Path random = Files.write(dir.resolve("random.bin"), bytes((int) (3 * MIB), 1));
      qemuIo(nbd, "write -s " + random + " 0 3M", "write -P 0x11 5M 512k").assertOk();
      assertThat(operator.bucketInitial("rs01", "cloud", Duration.ofSeconds(30), null)
          .finished()).isTrue();
      // point 2 has a log, over chunks 16 to 20: the compare applies it to the chunk objects
      qemuIo(nbd, "write -P 0x77 1M 300k").assertOk();
      assertThat(operator.bucketCycle("rs01", "cloud", null).pointId()).isEqualTo(2);
      Set<Long> touchedByTheLog = range(16, 20);

      // The bucket misses writes the tracker never saw and an object someone deleted.
      Set<Long> differing = new TreeSet<>();
      writeBehindTheTracker(image, 3 * CHUNK + 100, 4096, 0x31);
      writeBehindTheTracker(image, 17 * CHUNK, 4096, 0x32);
      writeBehindTheTracker(image, 100 * CHUNK + 512, 4096, 0x33);
      writeBehindTheTracker(image, 61 * CHUNK - 4096, 8192, 0x34);
      differing.addAll(List.of(3L, 17L, 100L, 60L, 61L));
      // Control: the bucket's latest point is not the source.
      Path control = dir.resolve("control.img");
      bucket("rs01", dir.resolve("scratch")).materialize(2, 0, control);
      compareRaw(control.toString(), image.toString()).assertFailed();
      ObjectNames names = new ObjectNames(BucketShipper.bucketVmId("rs01"));
      store.delete(names.chunk(0, 40, 0));
      differing.add(40L);
      Path vmDir = dir.resolve("primary/vms/rs01");
      ResyncLedger.markRequired(vmDir, "the test wrote behind the tracker");
      assertThat(operator.sourceStatus("rs01").resyncRequiredReason()).isNotNull();

      // The resync in bounded steps; between them the guest writes behind the compare's cursor
      // (tracked, shipped by the next cycle) and ahead of it (compared: these chunks differ too).
      Random rnd = new Random(5);
      List<BucketResyncProgress> steps = new ArrayList<>();
      BucketResyncProgress step;
      do {
        step = operator.bucketResync("rs01", "cloud", Duration.ofMillis(20), null);
        steps.add(step);
        assertThat(steps.size()).as("steps").isLessThan(500);
        if (steps.size() == 1) {
          assertThatThrownBy(() -> operator.bucketCycle("rs01", "cloud", null))
              .isInstanceOfSatisfying(AgentException.class, e -> {
                assertThat(e.code()).isEqualTo(ErrorCode.RESYNC_IN_PROGRESS);
                assertThat(e.code().recoverable()).isTrue();
              });
          assertThatThrownBy(() -> operator.bucketPrune("rs01", "cloud", List.of(2L)))
              .isInstanceOfSatisfying(AgentException.class,
                  e -> assertThat(e.code()).isEqualTo(ErrorCode.RESYNC_IN_PROGRESS));
        }
        if (!step.finished()) {
          long offset = rnd.nextLong(size / 512 - 8) * 512;
          qemuIo(nbd, "write -P " + (1 + rnd.nextInt(250)) + " " + offset + " 4k").assertOk();
          for (long c = offset / CHUNK; c <= (offset + 4095) / CHUNK; c++) {
            if (c >= step.doneChunks()) {
              differing.add(c);
            }
          }
        }
      } while (!step.finished());
      assertThat(steps.size()).as("the resync took several bounded steps").isGreaterThan(2);
      for (int i = 1; i < steps.size(); i++) {
        assertThat(steps.get(i).skippedChunks()).isEqualTo(steps.get(i - 1).doneChunks());
        assertThat(steps.get(i).generation()).isEqualTo(steps.get(0).generation());
      }
      assertThat(step.pointId()).isEqualTo(3L);
      assertThat(step.totalChunks()).isEqualTo(size / CHUNK);
      assertThat(step.differingChunks()).isEqualTo(differing.size());
      // Stored: the chunks that differ, and those only point 2's log made equal (the resync's
      // point names no log). Every other chunk keeps its object.
      Set<Long> stored = new TreeSet<>(differing);
      stored.addAll(touchedByTheLog);
      long sent = steps.stream().mapToLong(BucketResyncProgress::chunksSent).sum();
      long bytesSent = steps.stream().mapToLong(BucketResyncProgress::bytesSent).sum();
      long downloaded = steps.stream().mapToLong(BucketResyncProgress::bytesDownloaded).sum();
      assertThat(chunksOfGeneration(names, 3)).containsExactlyElementsOf(stored);
      assertThat(sent).isEqualTo(stored.size());
      assertThat(bytesSent).isBetween(sent * CHUNK, sent * (CHUNK + 1024));
      assertThat(operator.sourceStatus("rs01").resyncRequiredReason()).isNull();
      assertThat(ResyncLedger.load(vmDir).underWay()).isFalse();
      // The resync's own point is an image of one instant, the disk at its commit: its chunks,
      // read at different moments, with the logs of the writes made during the resync on top.
      assertMaterializes(bucket("rs01", dir.resolve("scratch")), 3,
          snapshot(image, "rs01-point3.img"));

      // The next cycle ships exactly the logs sealed after the resync's commit.
      qemuIo(nbd, "write -P 0x44 6M 64k").assertOk();
      var cycle = operator.bucketCycle("rs01", "cloud", null);
      assertThat(cycle.pointId()).isEqualTo(4);
      Path expected = snapshot(image, "rs01-point4.img");
      assertMaterializes(bucket("rs01", dir.resolve("scratch")), 4, expected);
      System.out.printf("resync of an 8 MiB disk (%d chunks of 64 KiB) in %d steps: %d differed "
          + "(5 written behind the tracker, 1 deleted, %d written ahead of the compare), %d "
          + "stored (%d bytes sealed), %d bytes read back from the bucket; the next cycle "
          + "shipped %d logs, %d bytes%n", step.totalChunks(), steps.size(),
          step.differingChunks(), differing.size() - 6, sent, bytesSent, downloaded,
          cycle.logsShipped(), cycle.bytesShipped());
    }
  }

  @Test
  void aLostLogOfTheLatestPointMakesTheResyncStoreEveryChunkOfThatDisk() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    try (HostAgent agent = startAgent(dir.resolve("primary"))) {
      AgentClient operator = TestCerts.operatorClient(agent);
      operator.createVm("rs02", List.of(MIB));
      String nbd = agent.nbdUri("rs02", "disk0");
      qemuIo(nbd, "write -P 0x51 0 256k").assertOk();
      assertThat(operator.bucketInitial("rs02", "cloud", Duration.ofSeconds(30), null)
          .finished()).isTrue();
      qemuIo(nbd, "write -P 0x52 512k 64k").assertOk();
      var cycle = operator.bucketCycle("rs02", "cloud", null);
      ObjectNames names = new ObjectNames(BucketShipper.bucketVmId("rs02"));
      long log = bucket("rs02", dir.resolve("scratch")).manifest(cycle.pointId()).disk(0)
          .logGenerations().get(0);
      store.delete(names.log(0, log));

      BucketResyncProgress step = operator.bucketResync("rs02", "cloud",
          Duration.ofSeconds(30), null);
      assertThat(step.finished()).isTrue();
      // what the bucket holds of the disk is unknown: every chunk differs, the 5 written are
      // stored, the 11 zero ones recorded as zero
      assertThat(step.differingChunks()).isEqualTo(16);
      assertThat(step.chunksSent()).isEqualTo(5);
      assertThat(chunksOfGeneration(names, step.pointId())).hasSize(5);
      // a retry of the finishing step (its answer lost) answers the same point, sealing nothing
      BucketResyncProgress again = operator.bucketResync("rs02", "cloud", null, null);
      assertThat(again.finished()).isTrue();
      assertThat(again.pointId()).isEqualTo(step.pointId());
      assertThat(again.generation()).isEqualTo(step.generation());
      assertThat(again.chunksSent()).isZero();
      qemuIo(nbd, "write -P 0x53 100k 4k").assertOk();
      assertThat(operator.bucketCycle("rs02", "cloud", null).pointId())
          .isEqualTo(step.pointId() + 1);
      Path expected = snapshot(agent.diskImage("rs02", "disk0"), "rs02.img");
      assertMaterializes(bucket("rs02", dir.resolve("scratch")), step.pointId() + 1, expected);
      // retention after a resync: the points before it go, with every object only they named
      operator.bucketPrune("rs02", "cloud", List.of(step.pointId() + 1));
      BucketAudit pruned = BucketAudit.of(store, new SealedObjects(new KeyEncryptionKey(KEK)),
          BucketShipper.bucketVmId("rs02"), dir.resolve("audit"));
      assertThat(pruned.points()).containsExactly(step.pointId() + 1);
      assertThat(pruned.unreferenced()).isEmpty();
      assertMaterializes(bucket("rs02", dir.resolve("scratch")), step.pointId() + 1, expected);
    }
  }

  @Test
  void anAgentKilledDuringAResyncResumesWithoutStoringChunksAgain() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    long size = 16 * MIB;
    Path data = dir.resolve("primary");
    List<String> options = List.of("--object-store", "cloud=" + siteFile);
    AgentProcess agent = AgentProcess.start("primary", data, List.of(), Map.of(), options);
    ObjectNames names = new ObjectNames(BucketShipper.bucketVmId("rs03"));
    Path image = data.resolve("vms/rs03/disk0.img");
    Map<Path, FileTime> beforeKill;
    try {
      AgentClient operator = agent.client();
      operator.createVm("rs03", List.of(size));
      Path random = Files.write(dir.resolve("random.bin"), bytes((int) (12 * MIB), 2));
      qemuIo(agent.nbdUri("rs03", "disk0"), "write -s " + random + " 0 12M").assertOk();
      assertThat(operator.bucketInitial("rs03", "cloud", Duration.ofSeconds(60), null)
          .finished()).isTrue();
      writeBehindTheTracker(image, 0, (int) (12 * MIB), 0);
      // One long, slow step (1 MB/s), killed part-way.
      CompletableFuture<BucketResyncProgress> step = CompletableFuture.supplyAsync(() ->
          operator.bucketResync("rs03", "cloud", Duration.ofSeconds(60), 1.0));
      long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
      while (resyncedChunkFiles(names).size() < 40) {
        assertThat(System.nanoTime()).as("40 chunks stored").isLessThan(deadline);
        assertThat(step).as("the step still runs").isNotDone();
        Thread.onSpinWait();
      }
      agent.kill();
      assertThat(step).failsWithin(Duration.ofSeconds(30));
      beforeKill = mtimes(resyncedChunkFiles(names));
    } finally {
      agent.close();
    }
    assertThat(bucket("rs03", dir.resolve("scratch")).pointIds()).containsExactly(1L);

    agent = AgentProcess.start("primary", data, List.of(), Map.of(), options);
    try {
      AgentClient operator = agent.client();
      BucketResyncProgress step = operator.bucketResync("rs03", "cloud",
          Duration.ofSeconds(60), null);
      assertThat(step.finished()).isTrue();
      assertThat(step.pointId()).isEqualTo(2L);
      assertThat(step.skippedChunks()).as("chunks found durable")
          .isGreaterThanOrEqualTo(beforeKill.size() - 4L);
      Map<Path, FileTime> after = mtimes(resyncedChunkFiles(names));
      long resent = beforeKill.entrySet().stream()
          .filter(e -> !e.getValue().equals(after.get(e.getKey()))).count();
      assertThat(resent).as("chunks stored again").isLessThanOrEqualTo(4);
      assertThat(after).hasSize((int) (12 * MIB / CHUNK));
      assertThat(step.differingChunks()).isEqualTo(192);
      assertThat(step.chunksSent()).isEqualTo(192 - step.skippedChunks());
      Path expected = snapshot(image, "rs03.img");
      assertMaterializes(bucket("rs03", dir.resolve("scratch")), 2, expected);
      System.out.printf("source agent killed during a resync after %d of 192 differing chunks "
          + "stored: resumed with %d skipped, %d stored again%n", beforeKill.size(),
          step.skippedChunks(), resent);
    } finally {
      agent.close();
    }
  }

  @Test
  void boundsAndStatesOfTheResyncRouteAreChecked() throws Exception {
    assumeInstalled("qemu-io");
    try (HostAgent agent = startAgent(dir.resolve("primary"))) {
      AgentClient operator = TestCerts.operatorClient(agent);
      operator.createVm("rs04", List.of(MIB));
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
      assertThat(code.apply(c -> c.bucketResync("rs04", "cloud", Duration.ofHours(1), null)))
          .isEqualTo(ErrorCode.BAD_REQUEST);
      assertThat(code.apply(c -> c.bucketResync("rs04", "cloud", null, -1.0)))
          .isEqualTo(ErrorCode.BAD_REQUEST);
      assertThat(code.apply(c -> c.bucketResync("rs04", "nowhere", null, null)))
          .isEqualTo(ErrorCode.BAD_REQUEST);
      assertThat(code.apply(c -> c.bucketResync("rs04", "cloud", null, null)))
          .as("not protected").isEqualTo(ErrorCode.INVALID_STATE);
      assertThat(ResyncLedger.load(dir.resolve("primary/vms/rs04")).underWay()).isFalse();

      // a bucket that lost the VM's points has nothing to compare with: copy it first
      qemuIo(agent.nbdUri("rs04", "disk0"), "write -P 0x61 0 64k").assertOk();
      assertThat(operator.bucketInitial("rs04", "cloud", Duration.ofSeconds(30), null)
          .finished()).isTrue();
      ObjectNames names = new ObjectNames(BucketShipper.bucketVmId("rs04"));
      for (String key : store.list(names.vmPrefix())) {
        if (names.isDataObject(key) || names.parseManifest(key).isPresent()) {
          store.delete(key);
        }
      }
      assertThatThrownBy(() -> operator.bucketResync("rs04", "cloud", null, null))
          .isInstanceOfSatisfying(AgentException.class, e -> {
            assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE);
            assertThat(e.getMessage()).contains("copy it first");
          });
      assertThat(ResyncLedger.load(dir.resolve("primary/vms/rs04")).underWay()).isFalse();

      AgentClient peer = TestCerts.clientAs(Identity.site("secondary"), agent);
      assertThatThrownBy(() -> peer.bucketResync("rs04", "cloud", null, null))
          .isInstanceOfSatisfying(AgentException.class,
              e -> assertThat(e.code()).isEqualTo(ErrorCode.FORBIDDEN));
    }
  }

  /**
   * Writes {@code length} bytes of {@code pattern} (0: random bytes) to the image itself, where
   * the change tracker never sees it.
   */
  private static void writeBehindTheTracker(Path image, long offset, int length, int pattern)
      throws IOException {
    byte[] bytes = pattern == 0 ? bytes(length, offset + 11) : new byte[length];
    if (pattern != 0) {
      java.util.Arrays.fill(bytes, (byte) pattern);
    }
    try (FileChannel channel = FileChannel.open(image, StandardOpenOption.WRITE)) {
      ByteBuffer buffer = ByteBuffer.wrap(bytes);
      long at = offset;
      while (buffer.hasRemaining()) {
        at += channel.write(buffer, at);
      }
      channel.force(true);
    }
  }

  /** The indexes of the chunk objects of disk 0 stored at {@code generation}. */
  private static List<Long> chunksOfGeneration(ObjectNames names, long generation)
      throws IOException {
    String suffix = String.format("-%016x", generation);
    String prefix = names.vmPrefix() + "disk-0/chunk-";
    return store.list(prefix).stream().filter(k -> k.endsWith(suffix))
        .map(k -> Long.parseLong(k.substring(prefix.length(), prefix.length() + 8), 16))
        .sorted().toList();
  }

  /** The backend's files of the chunks a resync on point 1 stores (generation 2). */
  private static List<Path> resyncedChunkFiles(ObjectNames names) throws IOException {
    Path diskDir = s3proxy.objectFile(PREFIX + names.vmPrefix() + "disk-0");
    if (!Files.isDirectory(diskDir)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(diskDir)) {
      return files.filter(f -> f.getFileName().toString().startsWith("chunk-")
          && f.getFileName().toString().endsWith(String.format("-%016x", 2))).toList();
    }
  }

  private static Map<Path, FileTime> mtimes(List<Path> files) throws IOException {
    Map<Path, FileTime> times = new HashMap<>();
    for (Path f : files) {
      times.put(f, Files.getLastModifiedTime(f));
    }
    return times;
  }

  private static Set<Long> range(long from, long to) {
    Set<Long> values = new TreeSet<>();
    for (long i = from; i <= to; i++) {
      values.add(i);
    }
    return values;
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

  private static byte[] bytes(int size, long seed) {
    byte[] b = new byte[size];
    new Random(seed).nextBytes(b);
    return b;
  }
}
