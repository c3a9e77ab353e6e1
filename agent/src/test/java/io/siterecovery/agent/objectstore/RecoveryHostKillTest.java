package io.siterecovery.agent.objectstore;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.BucketMessages.BucketInitialProgress;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoverFromBucketRequest;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryInfo;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryProgress;
import io.siterecovery.agent.objectstore.ship.BucketShipper;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.agent.testing.AgentProcess;
import io.siterecovery.agent.testing.TestCerts;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import java.util.function.Predicate;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The recovery host killed with SIGKILL in the middle of its background fetch: the recovery
 * agent runs in its own JVM with {@code --object-store cloud=FILE}; s3proxy, in this JVM, lets
 * only the first chunk reads through, so the kill lands with part of the disk local for sure.
 * The restarted agent lists the recovery again, resumes the fetch without downloading what was
 * already local, keeps the write a client made through NBD before the kill, and ends equal to
 * the source at the point plus that write.
 */
class RecoveryHostKillTest {
  private static final long MIB = 1L << 20;
  private static final int CHUNK = 1 << 20;
  private static final long SIZE = 40 * MIB;
  private static final long DATA = 32 * MIB;
  private static final int LET_THROUGH = 4;

  @TempDir
  Path dir;

  @Test
  void aRecoveryHostKilledDuringTheBackgroundFetchResumesWithoutDownloadingLocalChunksAgain()
      throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    String bucketVmId = BucketShipper.bucketVmId("kill01");
    Predicate<String> chunkOfTheVm = key -> key.contains("vms/" + bucketVmId + "/disk-")
        && key.substring(key.lastIndexOf('/') + 1).startsWith("chunk-");
    GatedBlobStore[] gate = new GatedBlobStore[1];
    try (S3ProxyServer s3proxy = S3ProxyServer.start(Files.createDirectories(dir.resolve("s3")),
        backend -> gate[0] = new GatedBlobStore(backend, chunkOfTheVm))) {
      Path siteFile = siteFile(s3proxy);
      Path atPoint = shipToTheBucket(siteFile);
      List<String> options = List.of("--object-store", "cloud=" + siteFile);
      Path data = dir.resolve("secondary");
      RecoverFromBucketRequest request = new RecoverFromBucketRequest("cloud", bucketVmId, null,
          false);

      gate[0].allow(LET_THROUGH);
      RecoveryProgress beforeKill;
      String export;
      AgentProcess host = AgentProcess.start("secondary", data, List.of(), Map.of(), options);
      try {
        AgentClient operator = host.client();
        RecoveryInfo recovered = operator.recoverFromBucket("kill01", request);
        export = recovered.exports().get(0);
        awaitLocal(operator, LET_THROUGH * MIB);
        // into a chunk already local, and into one the point has as zeroes (no download)
        qemuIo(export, "write -P 0x6b 1052672 8k", "write -P 0x6c 38M 4k").assertOk();
        beforeKill = operator.recoveryProgress("kill01");
        assertThat(beforeKill.localBytes()).as("local bytes at the kill")
            .isEqualTo((LET_THROUGH + 1) * MIB).isLessThan(beforeKill.totalBytes());
        assertThat(beforeKill.complete()).isFalse();
        host.kill();
      } finally {
        host.close();
      }
      Set<String> servedBeforeKill = gate[0].served();
      assertThat(servedBeforeKill).as("chunk objects downloaded before the kill")
          .hasSize(LET_THROUGH);

      long restarted = System.nanoTime();
      host = AgentProcess.start("secondary", data, List.of(), Map.of(), options);
      try {
        AgentClient operator = host.client();
        RecoveryProgress reloaded = operator.recoveryProgress("kill01");
        long resumedMillis = (System.nanoTime() - restarted) / 1_000_000;
        assertThat(reloaded.localBytes()).as("local bytes after the restart")
            .isEqualTo(beforeKill.localBytes());
        // the port is the new process's; the export is the same
        export = host.nbdUri("kill01", "disk0");
        assertThat(operator.recoverFromBucket("kill01", request).exports())
            .as("the same request answers the recovery it made").containsExactly(export);
        gate[0].open();
        RecoveryProgress done = RecoveryWaits.awaitComplete(operator, "kill01");
        long completeMillis = (System.nanoTime() - restarted) / 1_000_000;
        for (String key : servedBeforeKill) {
          assertThat(gate[0].requests(key)).as("GETs of %s, local before the kill", key)
              .isEqualTo(1);
        }
        long storedChunks = DATA / CHUNK;
        assertThat(done.downloadedBytes()).as("bytes downloaded after the restart")
            .isEqualTo((storedChunks - LET_THROUGH) * CHUNK);
        assertThat(done.disks().get(0).failedChunks()).isEmpty();
        assertThat(done.disks().get(0).writtenChunks()).containsExactly(1L, 38L);

        RecoveryWaits.writeImage(atPoint, 1052672, 8 << 10, (byte) 0x6b);
        RecoveryWaits.writeImage(atPoint, 38 * MIB, 4 << 10, (byte) 0x6c);
        compareRaw(atPoint.toString(), export).assertOk();
        System.out.printf("recovery host killed with %d of %d MiB local: restarted and serving"
            + " progress in %d ms, complete in %d ms, %d MiB downloaded after the restart"
            + " (%d MiB were stored chunks)%n", beforeKill.localBytes() / MIB, SIZE / MIB,
            resumedMillis, completeMillis, done.downloadedBytes() / MIB, DATA / MIB);
      } finally {
        gate[0].open();
        host.close();
      }
    }
  }

  /**
   * Without a write, the present marks of the chunks fetched before the kill wait in memory for
   * the ledger's next batch (every 16 fetched chunks, or a write): a kill before it costs those
   * downloads again, never a chunk the restarted ledger holds.
   */
  @Test
  void aStalledFetchCommitsItsChunksWithinASecondSoAKillCostsNoneAgain() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    String bucketVmId = BucketShipper.bucketVmId("kill01");
    Predicate<String> chunkOfTheVm = key -> key.contains("vms/" + bucketVmId + "/disk-")
        && key.substring(key.lastIndexOf('/') + 1).startsWith("chunk-");
    GatedBlobStore[] gate = new GatedBlobStore[1];
    try (S3ProxyServer s3proxy = S3ProxyServer.start(Files.createDirectories(dir.resolve("s3")),
        backend -> gate[0] = new GatedBlobStore(backend, chunkOfTheVm))) {
      Path siteFile = siteFile(s3proxy);
      Path atPoint = shipToTheBucket(siteFile);
      List<String> options = List.of("--object-store", "cloud=" + siteFile);
      Path data = dir.resolve("secondary");
      gate[0].allow(LET_THROUGH);
      AgentProcess host = AgentProcess.start("secondary", data, List.of(), Map.of(), options);
      try {
        AgentClient operator = host.client();
        operator.recoverFromBucket("kill01", new RecoverFromBucketRequest("cloud", bucketVmId,
            null, false));
        awaitLocal(operator, LET_THROUGH * MIB);
        // the fetch stands at the gate, far from a batch of 16: the periodic commit makes the
        // fetched chunks durable all the same
        Path ledger = data.resolve("bucket-recoveries/kill01/disk0.ledger");
        long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
        while (presentMarks(ledger) < LET_THROUGH * MIB / CHUNK) {
          assertThat(System.nanoTime()).as("present marks in %s", ledger).isLessThan(deadline);
          Thread.onSpinWait();
        }
        host.kill();
      } finally {
        host.close();
      }
      Set<String> servedBeforeKill = gate[0].served();

      host = AgentProcess.start("secondary", data, List.of(), Map.of(), options);
      try {
        AgentClient operator = host.client();
        RecoveryProgress reloaded = operator.recoveryProgress("kill01");
        assertThat(reloaded.localBytes()).as("local after the restart")
            .isEqualTo(LET_THROUGH * MIB);
        gate[0].open();
        RecoveryProgress done = RecoveryWaits.awaitComplete(operator, "kill01");
        assertThat(done.downloadedBytes()).as("downloaded after the restart: what was not local")
            .isEqualTo(DATA - reloaded.localBytes());
        long again = servedBeforeKill.stream().filter(k -> gate[0].requests(k) > 1).count();
        assertThat(again * CHUNK).as("chunks downloaded twice")
            .isEqualTo(LET_THROUGH * MIB - reloaded.localBytes());
        compareRaw(atPoint.toString(), host.nbdUri("kill01", "disk0")).assertOk();
        System.out.printf("recovery host killed with %d MiB fetched and no write: %d MiB local"
            + " after the restart, %d MiB downloaded again%n", LET_THROUGH * MIB / MIB,
            reloaded.localBytes() / MIB, again * CHUNK / MIB);
      } finally {
        gate[0].open();
        host.close();
      }
    }
  }

  /** Chunks the ledger file marks present (the low bit of their byte). */
  private static long presentMarks(Path ledger) throws IOException {
    if (!Files.exists(ledger)) {
      return 0;
    }
    long n = 0;
    for (byte b : Files.readAllBytes(ledger)) {
      n += b & 1;
    }
    return n;
  }

  /** Ships VM kill01 (initial copy and one cycle) and answers its image at the last point. */
  private Path shipToTheBucket(Path siteFile) throws Exception {
    try (HostAgent primary = new HostAgent(new HostAgent.Settings("primary",
        dir.resolve("primary"), "127.0.0.1", 0, 0, TestCerts.site("primary"), Map.of(),
        HostAgent.Settings.LOOPBACK, false, null, null,
        Map.of("cloud", ObjectStoreSite.load("cloud", siteFile))))) {
      AgentClient source = TestCerts.operatorClient(primary);
      source.createVm("kill01", List.of(SIZE));
      String nbd = primary.nbdUri("kill01", "disk0");
      byte[] random = new byte[(int) DATA];
      new Random(12).nextBytes(random);
      qemuIo(nbd, "write -s " + Files.write(dir.resolve("random.bin"), random) + " 0 32M")
          .assertOk();
      BucketInitialProgress step;
      do {
        step = source.bucketInitial("kill01", "cloud", Duration.ofSeconds(10), null);
      } while (!step.finished());
      qemuIo(nbd, "write -P 0x3c 5M 64k").assertOk(); // a log applied over a stored chunk
      source.bucketCycle("kill01", "cloud", null);
      return Files.copy(primary.diskImage("kill01", "disk0"), dir.resolve("at-point.raw"),
          StandardCopyOption.REPLACE_EXISTING);
    }
  }

  private static void awaitLocal(AgentClient operator, long bytes) {
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (operator.recoveryProgress("kill01").localBytes() < bytes) {
      assertThat(System.nanoTime()).as("%d bytes local", bytes).isLessThan(deadline);
      Thread.onSpinWait();
    }
  }

  private Path siteFile(S3ProxyServer s3proxy) throws Exception {
    return s3proxy.siteFile(dir.resolve("config"), 0x3e, CHUNK);
  }
}
