package io.siterecovery.agent.objectstore;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.nbd.NbdServer;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoverFromBucketRequest;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryInfo;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryProgress;
import io.siterecovery.agent.objectstore.recover.BucketSites;
import io.siterecovery.agent.testing.Tools;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Instant recovery from s3proxy: a 16 GiB sparse VM with a few MiB of known data at scattered
 * offsets is written to the bucket by {@link BucketReplica} (an initial copy and a delta log that
 * overwrites part of a chunk, zeroes part of another and writes into a chunk that was zero), then
 * recovered by {@link BucketRecoveries} and read and written over NBD by qemu-io and nbdinfo. The
 * background fetch is held back where a test needs chunks that are not local yet: its chunk
 * downloads wait at a gate the NBD clients' reads do not pass through.
 */
class InstantRecoveryTest {
  private static final long GIB = 1L << 30;
  private static final long MIB = 1L << 20;
  private static final long DISK_SIZE = 16 * GIB;
  private static final String SITE = "cloud";
  private static final String BUCKET_VM = "vm-instant-0001";

  @TempDir
  static Path shared;
  private static S3ProxyServer s3proxy;
  private static S3ObjectStore store;
  private static final KeyEncryptionKey KEK = new KeyEncryptionKey(new byte[32]);
  /** The source disk at point 2, the point every test recovers. */
  private static Path source;
  private static int storedChunks;

  @TempDir
  Path dataDir;
  private final GatedStore gated = new GatedStore();
  private BucketRecoveries recoveries;
  private NbdServer nbd;

  /** Chunk downloads of the background fetch wait here while closed; everything else passes. */
  private static final class GatedStore extends ForwardingStore {
    final CountDownLatch open = new CountDownLatch(1);
    final AtomicInteger chunkGets = new AtomicInteger();
    volatile int failBackgroundAfter = Integer.MAX_VALUE;

    GatedStore() {
      super(store);
    }

    @Override
    public byte[] get(String key, int maxBytes) throws IOException {
      if (key.contains("/chunk-") && Thread.currentThread().getName().startsWith("bucket-fetch")) {
        if (chunkGets.get() >= failBackgroundAfter) {
          throw new IOException("test: the network to the bucket is down");
        }
        try {
          if (!open.await(2, TimeUnit.MINUTES)) {
            throw new IOException("test: the gate was never opened");
          }
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new IOException(e);
        }
      }
      if (key.contains("/chunk-")) {
        chunkGets.incrementAndGet();
      }
      return super.get(key, maxBytes);
    }
  }

  @BeforeAll
  static void writeTheBucket() throws Exception {
    s3proxy = S3ProxyServer.start(Files.createDirectories(shared.resolve("bucket")));
    store = s3proxy.store("replicas/");
    BucketReplica replica = new BucketReplica(store, new SealedObjects(KEK), BUCKET_VM,
        BucketReplica.DEFAULT_CHUNK_SIZE, 4, shared.resolve("scratch"));
    try (TrackedDisk disk = new TrackedDisk(Files.createDirectories(shared.resolve("source")), 0,
        DISK_SIZE)) {
      disk.write(0, fill(MIB, 0x11));
      disk.write(3 * GIB + 12_345, fill(256 << 10, 0x22));
      disk.write(8 * GIB - 2 * MIB, fill(4 * MIB, 0x33)); // across a chunk boundary
      disk.write(15 * GIB, fill(MIB, 0x44));
      disk.write(DISK_SIZE - 4096, fill(4096, 0x55));
      disk.swap();
      replica.initialCopy(List.of(disk.asImage()), Map.of());
      disk.write(15 * GIB + 64 * 1024, fill(64 << 10, 0x66)); // part of a stored chunk
      disk.zero(4096, 4096);
      disk.write(11 * GIB + 100, fill(8192, 0x77)); // into a chunk that was zero
      replica.shipLogs(Map.of(0, List.of(disk.swap())), false);
      source = disk.image;
    }
    storedChunks = (int) store.list(replica.names().vmPrefix()).stream()
        .filter(k -> k.contains("/chunk-")).count();
  }

  @AfterAll
  static void stopS3Proxy() throws Exception {
    store.close();
    s3proxy.close();
  }

  @AfterEach
  void close() throws IOException {
    gated.open.countDown();
    if (nbd != null) {
      nbd.close();
    }
    if (recoveries != null) {
      recoveries.close();
    }
  }

  /**
   * With one fetch thread behind a closed gate, the background fetch waits at the first stored
   * chunk (chunk 0) and has made nothing else local.
   */
  private void start(BucketSites sites, int fetchThreads) throws IOException {
    recoveries = new BucketRecoveries(dataDir, sites, name -> false, this::uri, fetchThreads);
    nbd = new NbdServer(recoveries, new InetSocketAddress("127.0.0.1", 0));
  }

  private BucketSites sites(ObjectStore through) {
    return site -> SITE.equals(site) ? Optional.of(new BucketSites.Bucket(through, KEK))
        : Optional.empty();
  }

  private String uri(String vm, String disk) {
    return "nbd://127.0.0.1:" + nbd.port() + "/" + vm + "/" + disk;
  }

  @Test
  void theDiskIsExportedAtOnceAndAFarBlockIsReadFromTheBucketBeforeTheRestIsLocal()
      throws Exception {
    assumeInstalled("qemu-io", "qemu-img", "nbdinfo");
    start(sites(gated), 1);
    long started = System.nanoTime();
    RecoveryInfo info = recoveries.create("web", new RecoverFromBucketRequest(SITE, BUCKET_VM,
        2L, false));
    long exported = System.nanoTime();
    Tools.qemuIo(uri("web", "disk0"), "read -P 0x66 " + (15 * GIB + 64 * 1024) + " 4096")
        .assertOk();
    long firstRead = System.nanoTime();
    System.out.printf("16 GiB VM from the bucket: exported in %d ms, first 4 KiB read (15 GiB in,"
        + " a chunk with a log applied) after %d ms%n", (exported - started) / 1_000_000,
        (firstRead - started) / 1_000_000);
    assertThat(info.exports()).containsExactly(uri("web", "disk0"));
    Tools.qemuIo(uri("web", "disk0"),
        "read -P 0x33 " + (8 * GIB - 2 * MIB) + " " + 4 * MIB,
        "read -P 0x77 " + (11 * GIB + 100) + " 8192",
        "read -P 0 " + (5 * GIB) + " 65536",
        "read -P 0x55 " + (DISK_SIZE - 4096) + " 4096").assertOk();
    assertThat(recoveries.disk("web", "disk0").present(3 * 256)).as("chunk 768 local").isFalse();

    gated.open.countDown();
    // nbdinfo reads the first sector to describe the content: chunk 0, held back until now
    assertThat(Tools.run("nbdinfo", uri("web", "disk0")).assertOk().output())
        .contains("export-size: " + DISK_SIZE);
    Tools.qemuIo(uri("web", "disk0"),
        "read -P 0x11 0 4096", "read -P 0 4096 4096", "read -P 0x11 8192 4096",
        "read -P 0x22 " + (3 * GIB + 12_345) + " " + (256 << 10)).assertOk();
    RecoveryProgress done = awaitComplete("web");
    assertThat(done.localBytes()).isEqualTo(DISK_SIZE);
    assertThat(gated.chunkGets.get()).as("each stored chunk downloaded once")
        .isEqualTo(storedChunks);
    Tools.compareRaw(source.toString(), image("web").toString()).assertOk();
  }

  @Test
  void aWriteBeforeTheBackgroundFetchReachedItsChunkLandsAndTheFetchKeepsIt() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    start(sites(gated), 1);
    recoveries.create("web", new RecoverFromBucketRequest(SITE, BUCKET_VM, null, true));
    String disk = uri("web-test", "disk0");
    List<String> writes = List.of(
        "write -P 0xab " + (15 * GIB + 1000) + " 512", // into a stored chunk, partly
        "write -P 0xcd " + (9 * GIB + 4096) + " 65536", // into a zero chunk
        "write -P 0xef " + (8 * GIB - 4096) + " 8192"); // across two stored chunks
    Tools.qemuIo(disk, writes.toArray(String[]::new)).assertOk();
    Tools.qemuIo(disk, "read -P 0xab " + (15 * GIB + 1000) + " 512",
        "read -P 0x44 " + (15 * GIB) + " 1000", "read -P 0x66 " + (15 * GIB + 65536) + " 4096",
        "read -P 0xcd " + (9 * GIB + 4096) + " 65536",
        "read -P 0xef " + (8 * GIB - 4096) + " 8192").assertOk();

    gated.open.countDown();
    RecoveryProgress done = awaitComplete("web-test");
    assertThat(done.disks().get(0).writtenChunks()).containsExactly(2048L - 1, 2048L,
        9 * 256L, 15 * 256L);
    Path expected = expectedWith(writes);
    Tools.compareRaw(expected.toString(), image("web-test").toString()).assertOk();

    recoveries.discard("web-test");
    assertThat(recoveries.exportNames()).isEmpty();
    assertThat(dataDir.resolve("bucket-recoveries").resolve("web-test")).doesNotExist();
    assertThat(Tools.run("qemu-io", "-f", "raw", "-c", "read 0 512", disk).ok())
        .as("the export is gone").isFalse();
  }

  @Test
  void aFlippedByteAMissingChunkAndAnotherChunksObjectEachFailTheirReadsWithEioAndNoOtherRead()
      throws Exception {
    assumeInstalled("qemu-io");
    String vm = "vm-damaged-0001";
    BucketReplica replica = new BucketReplica(store, new SealedObjects(KEK), vm,
        BucketReplica.DEFAULT_CHUNK_SIZE, 2, dataDir.resolve("scratch"));
    try (TrackedDisk disk = new TrackedDisk(Files.createDirectories(dataDir.resolve("src")), 0,
        64 * MIB)) {
      disk.write(0, fill(20 * MIB, 0x11)); // chunks 0 to 4 stored
      disk.swap();
      replica.initialCopy(List.of(disk.asImage()), Map.of());
    }
    Path flipped = s3proxy.objectFile("replicas/" + replica.names().chunk(0, 1, 0));
    byte[] bytes = Files.readAllBytes(flipped);
    bytes[bytes.length / 2] ^= 1;
    Files.write(flipped, bytes);
    Files.delete(s3proxy.objectFile("replicas/" + replica.names().chunk(0, 2, 0)));
    Files.copy(s3proxy.objectFile("replicas/" + replica.names().chunk(0, 0, 0)),
        s3proxy.objectFile("replicas/" + replica.names().chunk(0, 3, 0)),
        StandardCopyOption.REPLACE_EXISTING); // the same bytes 0x11, under another name

    start(sites(store), 4);
    recoveries.create("db", new RecoverFromBucketRequest(SITE, vm, null, false));
    for (long chunk = 1; chunk <= 3; chunk++) {
      Tools.Result refused = Tools.run("qemu-io", "-f", "raw", "-c",
          "read " + (chunk * 4 * MIB + MIB) + " 4096", uri("db", "disk0"));
      assertThat(refused.output()).as("chunk " + chunk).contains("Input/output error");
    }
    Tools.qemuIo(uri("db", "disk0"), "read -P 0x11 0 4096",
        "read -P 0x11 " + (4 * MIB - 4096) + " 4096", "read -P 0x11 " + (16 * MIB) + " 4096",
        "read -P 0 " + (40 * MIB) + " 4096").assertOk();
    RecoveryProgress progress = await(() -> recoveries.progress("db").localBytes()
        == 52 * MIB, "every chunk but the three damaged ones local");
    assertThat(progress.complete()).isFalse();
    assertThat(progress.disks().get(0).failedChunks()).containsExactly(1L, 2L, 3L);
    assertThat(Tools.run("qemu-io", "-f", "raw", "-c", "read " + (4 * MIB) + " 512",
        uri("db", "disk0")).output()).as("still refused after the background pass")
        .contains("Input/output error");
  }


  @Test
  void aPruneDuringTheRecoveryIsFollowedToTheChunksItFoldedTheLogsInto() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    String vm = "vm-pruned-0001";
    BucketReplica replica = new BucketReplica(store, new SealedObjects(KEK), vm,
        BucketReplica.DEFAULT_CHUNK_SIZE, 2, dataDir.resolve("scratch"));
    Path expected;
    try (TrackedDisk disk = new TrackedDisk(Files.createDirectories(dataDir.resolve("src")), 0,
        64 * MIB)) {
      disk.write(0, fill(16 * MIB, 0x11));
      disk.swap();
      replica.initialCopy(List.of(disk.asImage()), Map.of());
      disk.write(4 * MIB + 100, fill(8192, 0x22));
      replica.shipLogs(Map.of(0, List.of(disk.swap())), false);
      disk.write(8 * MIB + 5000, fill(4096, 0x33));
      replica.shipLogs(Map.of(0, List.of(disk.swap())), false);
      expected = disk.image;
    }
    start(sites(gated), 1);
    recoveries.create("app", new RecoverFromBucketRequest(SITE, vm, 3L, false));

    BucketReplica.PruneResult pruned = replica.prune(1);
    assertThat(pruned.chunksWritten()).as("chunks 1 and 2 folded").isEqualTo(2);
    Tools.qemuIo(uri("app", "disk0"), "read -P 0x22 " + (4 * MIB + 100) + " 8192",
        "read -P 0x11 " + (4 * MIB) + " 100", "read -P 0x33 " + (8 * MIB + 5000) + " 4096",
        "read -P 0x11 " + (12 * MIB) + " 4096").assertOk();

    gated.open.countDown();
    awaitComplete("app");
    Tools.compareRaw(expected.toString(), image("app").toString()).assertOk();
  }

  @Test
  void aRestartedAgentResumesTheFetchFromItsLedgerAndKeepsTheVmsWrites() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    gated.open.countDown();
    gated.failBackgroundAfter = 2;
    start(sites(gated), 4);
    recoveries.create("web", new RecoverFromBucketRequest(SITE, BUCKET_VM, 2L, false));
    await(() -> recoveries.progress("web").disks().get(0).failedChunks().size()
        + gated.chunkGets.get() == storedChunks, "the background pass ends with the network down");
    long localBefore = recoveries.progress("web").localBytes();
    List<String> writes = List.of("write -P 0x9a " + (15 * GIB + 3 * MIB) + " 4096");
    Tools.qemuIo(uri("web", "disk0"), writes.toArray(String[]::new)).assertOk();
    int downloadedBefore = gated.chunkGets.get();
    nbd.close();
    recoveries.close();

    GatedStore healthy = new GatedStore();
    healthy.open.countDown();
    start(sites(healthy), 4);
    assertThat(recoveries.progress("web").localBytes()).as("local after the restart")
        .isGreaterThanOrEqualTo(localBefore);
    RecoveryProgress done = awaitComplete("web");
    assertThat(downloadedBefore + healthy.chunkGets.get()).as("no chunk downloaded twice")
        .isEqualTo(storedChunks);
    assertThat(done.disks().get(0).writtenChunks()).containsExactly(15 * 256L);
    Tools.compareRaw(expectedWith(writes).toString(), image("web").toString()).assertOk();
  }

  private Path image(String vm) {
    return dataDir.resolve("bucket-recoveries").resolve(vm).resolve("disk0.img");
  }

  /** The source at point 2 with {@code writes} (qemu-io commands) applied. */
  private Path expectedWith(List<String> writes) {
    Path expected = dataDir.resolve("expected.img");
    Tools.run("cp", "--sparse=always", source.toString(), expected.toString()).assertOk();
    List<String> command = new java.util.ArrayList<>(List.of("qemu-io", "-f", "raw"));
    for (String w : writes) {
      command.add("-c");
      command.add(w);
    }
    command.add(expected.toString());
    Tools.run(command).assertOk();
    return expected;
  }

  private RecoveryProgress awaitComplete(String vm) throws InterruptedException {
    return await(() -> recoveries.progress(vm).complete(), vm + "'s background fetch complete");
  }

  /** Polls, pausing so the fetch gets the CPU, until {@code condition} or a deadline. */
  private RecoveryProgress await(BooleanSupplier condition, String what)
      throws InterruptedException {
    Instant deadline = Instant.now().plus(Duration.ofMinutes(1));
    while (!condition.getAsBoolean()) {
      assertThat(Instant.now()).as(what).isBefore(deadline);
      Thread.sleep(20);
    }
    return recoveries.list().stream().findFirst()
        .map(i -> recoveries.progress(i.vm())).orElseThrow();
  }

  private static byte[] fill(long length, int value) {
    byte[] bytes = new byte[(int) length];
    Arrays.fill(bytes, (byte) value);
    return bytes;
  }
}
