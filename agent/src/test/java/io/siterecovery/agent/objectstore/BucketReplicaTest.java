package io.siterecovery.agent.objectstore;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.testing.Tools;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A VM's disk replicated to s3proxy through {@link S3ObjectStore} and rebuilt from it: each
 * recovery point is judged by {@code qemu-img compare} against the source image as it was when
 * the point was taken, and the bucket's files are read, damaged and swapped on s3proxy's
 * filesystem backend.
 */
class BucketReplicaTest {
  private static final int CHUNK = 64 << 10;
  private static final long DISK_SIZE = 32L * CHUNK + 12_288; // a short last chunk
  private static final String PREFIX = "replicas/";

  @TempDir
  static Path bucketDir;
  private static S3ProxyServer s3proxy;
  private static S3ObjectStore store;

  @TempDir
  Path dir;
  private final SealedObjects sealed = new SealedObjects(new KeyEncryptionKey(random(32, 42)));

  @BeforeAll
  static void startS3Proxy() throws Exception {
    s3proxy = S3ProxyServer.start(bucketDir);
    store = s3proxy.store(PREFIX);
  }

  @AfterAll
  static void stopS3Proxy() throws Exception {
    store.close();
    s3proxy.close();
  }

  @Test
  void initialCopyAndTwoDeltaGenerationsMaterializeAsTheSourceWasAtEachPoint() throws Exception {
    assumeInstalled("qemu-img");
    BucketReplica replica = replica("vm-deltas");
    try (TrackedDisk disk = new TrackedDisk(dir, 0, DISK_SIZE)) {
      disk.write(0, random(3 * CHUNK + 100, 1));
      disk.write(DISK_SIZE - 5000, random(5000, 2));
      disk.swap(); // the initial copy's image already holds these writes
      List<Path> expected = new ArrayList<>();
      replica.initialCopy(List.of(disk.asImage()), Map.of());
      expected.add(disk.snapshot("point1.img"));

      disk.write(CHUNK - 10, random(20, 3)); // across a chunk boundary
      disk.write(10L * CHUNK, random(2 * CHUNK, 4)); // into chunks that were zero
      disk.zero(CHUNK + 512, 4096);
      replica.shipLogs(Map.of(0, List.of(disk.swap())), false);
      expected.add(disk.snapshot("point2.img"));

      disk.write(11L * CHUNK + 7, random(999, 5));
      disk.zero(0, CHUNK); // a whole stored chunk zeroed
      disk.write(DISK_SIZE - 1, new byte[] {9});
      replica.shipLogs(Map.of(0, List.of(disk.swap())), false);
      expected.add(disk.snapshot("point3.img"));

      assertThat(replica.pointIds()).containsExactly(1L, 2L, 3L);
      for (int point = 1; point <= 3; point++) {
        Path out = dir.resolve("materialized" + point + ".img");
        replica.materialize(point, 0, out);
        Tools.run("qemu-img", "compare", "-f", "raw", "-F", "raw", expected.get(point - 1)
            .toString(), out.toString()).assertOk();
      }
    }
  }

  @Test
  void eachDiskOfAVmHasItsOwnChunksAndLogs() throws Exception {
    BucketReplica replica = replica("vm-two-disks");
    try (TrackedDisk first = new TrackedDisk(Files.createDirectories(dir.resolve("a")), 0,
            DISK_SIZE);
        TrackedDisk second = new TrackedDisk(Files.createDirectories(dir.resolve("b")), 1,
            4L * CHUNK)) {
      first.write(0, random(CHUNK, 1));
      second.write(CHUNK, random(CHUNK, 2));
      first.swap();
      second.swap();
      replica.initialCopy(List.of(first.asImage(), second.asImage()), Map.of());
      first.write(3L * CHUNK, random(100, 3));
      second.write(0, random(100, 4));
      Path firstLog = first.swap();
      Path secondLog = second.swap();
      assertThatThrownBy(() -> replica.shipLogs(Map.of(0, List.of(secondLog)), false))
          .hasMessageContaining("is not a log of disk 0");
      replica.shipLogs(Map.of(0, List.of(firstLog), 1, List.of(secondLog)), false);

      replica.materialize(2, 0, dir.resolve("first.img"));
      replica.materialize(2, 1, dir.resolve("second.img"));
      assertThat(Files.mismatch(dir.resolve("first.img"), first.image)).isEqualTo(-1);
      assertThat(Files.mismatch(dir.resolve("second.img"), second.image)).isEqualTo(-1);
    }
  }

  @Test
  void chunksThatReadAsZeroesAreNotStored() throws Exception {
    BucketReplica replica = replica("vm-sparse");
    try (TrackedDisk disk = new TrackedDisk(dir, 0, DISK_SIZE)) {
      disk.write(2L * CHUNK, random(10, 1));
      disk.write(17L * CHUNK + CHUNK - 1, new byte[] {1});
      disk.write(DISK_SIZE - 1, new byte[] {1});
      PointManifest point = replica.initialCopy(List.of(disk.asImage()), Map.of());

      assertThat(chunkObjects("vm-sparse")).hasSize(3);
      long[] generations = point.disk(0).chunkGenerations();
      assertThat(generations).hasSize(33);
      assertThat(Arrays.stream(generations).filter(g -> g == PointManifest.ZERO).count())
          .isEqualTo(30);
    }
  }

  @Test
  void aKnownPatternWrittenToTheDiskIsNowhereInTheBucketsFiles() throws Exception {
    byte[] pattern = "SITE-RECOVERY-PLAINTEXT-CANARY-7d1f3e".getBytes(StandardCharsets.US_ASCII);
    byte[] block = new byte[CHUNK];
    for (int i = 0; i + pattern.length <= block.length; i += pattern.length) {
      System.arraycopy(pattern, 0, block, i, pattern.length);
    }
    BucketReplica replica = replica("vm-canary");
    try (TrackedDisk disk = new TrackedDisk(dir, 0, DISK_SIZE)) {
      disk.write(CHUNK, block);
      disk.swap();
      replica.initialCopy(List.of(disk.asImage()), Map.of());
      disk.write(5L * CHUNK, block); // and through a shipped log
      replica.shipLogs(Map.of(0, List.of(disk.swap())), false);
      assertThat(contains(Files.readAllBytes(disk.image), pattern)).as("control").isTrue();
    }
    List<Path> files = s3proxy.files();
    assertThat(files).anySatisfy(f -> assertThat(f.toString()).contains("vm-canary"));
    long scanned = 0;
    for (Path file : files) {
      byte[] content = Files.readAllBytes(file);
      scanned += content.length;
      assertThat(contains(content, pattern)).as("%s holds the pattern", file).isFalse();
      assertThat(file.toString()).doesNotContain("CANARY");
    }
    assertThat(scanned).isGreaterThan(2L * CHUNK);
  }

  @Test
  void aFlippedByteInAChunkIsCorruptAndNothingIsMaterialized() throws Exception {
    BucketReplica replica = replicaWithPoints("vm-flip", 2);
    String chunk = replica.names().chunk(0, 1, 0);
    Path file = s3proxy.objectFile(PREFIX + chunk);
    byte[] bytes = Files.readAllBytes(file);
    bytes[bytes.length / 2] ^= 0x40;
    Files.write(file, bytes);

    assertRefused(replica, 2, ObjectCorruptException.class, chunk);
  }

  @Test
  void aChunkLongerThanItsChunkIsRefusedBeforeItIsRead() throws Exception {
    BucketReplica replica = replicaWithPoints("vm-extended", 1);
    String chunk = replica.names().chunk(0, 0, 0);
    Path file = s3proxy.objectFile(PREFIX + chunk);
    Files.write(file, new byte[] {0}, java.nio.file.StandardOpenOption.APPEND);

    assertRefused(replica, 1, ObjectCorruptException.class, chunk);
  }

  @Test
  void aTruncatedLogIsCorrupt() throws Exception {
    BucketReplica replica = replicaWithPoints("vm-truncated", 2);
    String log = replica.names().log(0, 2);
    Path file = s3proxy.objectFile(PREFIX + log);
    Files.write(file, Arrays.copyOf(Files.readAllBytes(file), (int) Files.size(file) - 1));

    assertRefused(replica, 2, ObjectCorruptException.class, log);
  }

  @Test
  void aDeletedObjectIsMissing() throws Exception {
    BucketReplica replica = replicaWithPoints("vm-deleted", 2);
    String chunk = replica.names().chunk(0, 0, 0);
    store.delete(chunk);

    assertRefused(replica, 1, ObjectMissingException.class, chunk);
  }

  @Test
  void anObjectCopiedFromAnotherVmIsAMismatch() throws Exception {
    BucketReplica victim = replicaWithPoints("vm-victim", 2);
    BucketReplica other = replicaWithPoints("vm-other", 2);
    String chunk = victim.names().chunk(0, 1, 0);
    Files.copy(s3proxy.objectFile(PREFIX + other.names().chunk(0, 1, 0)),
        s3proxy.objectFile(PREFIX + chunk), StandardCopyOption.REPLACE_EXISTING);

    assertRefused(victim, 1, ObjectMismatchException.class, chunk);
  }

  @Test
  void aLogCopiedFromAnotherPointIsAMismatch() throws Exception {
    BucketReplica replica = replicaWithPoints("vm-swapped", 3);
    String second = replica.names().log(0, 2);
    Files.copy(s3proxy.objectFile(PREFIX + replica.names().log(0, 3)),
        s3proxy.objectFile(PREFIX + second), StandardCopyOption.REPLACE_EXISTING);

    assertRefused(replica, 2, ObjectMismatchException.class, second);
  }

  @Test
  void aPointIsListedOnlyOnceItsManifestIsWrittenAfterAllItsObjects() throws Exception {
    BucketReplica replica = replica("vm-crash");
    try (TrackedDisk disk = new TrackedDisk(dir, 0, DISK_SIZE)) {
      disk.write(0, random(CHUNK, 1));
      disk.swap();
      replica.initialCopy(List.of(disk.asImage()), Map.of());
      disk.write(3L * CHUNK, random(CHUNK, 2));
      Path log = disk.swap();

      List<String> puts = new ArrayList<>();
      ObjectStore crashing = new ForwardingStore(store) {
        @Override
        public void put(String key, byte[] bytes) throws IOException {
          puts.add(key);
          if (key.contains("/points/")) {
            throw new IOException("agent killed before the manifest");
          }
          super.put(key, bytes);
        }

        @Override
        public void put(String key, Path file) throws IOException {
          puts.add(key);
          super.put(key, file);
        }
      };
      BucketReplica dying = new BucketReplica(crashing, sealed, "vm-crash", CHUNK, 2,
          dir.resolve("scratch"));
      assertThatThrownBy(() -> dying.shipLogs(Map.of(0, List.of(log)), false))
          .hasMessageContaining("before the manifest");
      assertThat(puts).containsExactly(replica.names().log(0, 2), replica.names().manifest(2, 0));
      assertThat(store.list(replica.names().vmPrefix())).contains(replica.names().log(0, 2));
      assertThat(replica.pointIds()).containsExactly(1L);

      replica.shipLogs(Map.of(0, List.of(log)), false); // the retry after the restart
      assertThat(replica.pointIds()).containsExactly(1L, 2L);
      Path out = dir.resolve("out.img");
      replica.materialize(2, 0, out);
      assertThat(Files.mismatch(out, disk.image)).isEqualTo(-1);
    }
  }

  @Test
  void pruneKeepsEveryRetainedPointMaterializableAndDeletesTheRest() throws Exception {
    BucketReplica replica = replica("vm-prune");
    List<Path> expected = new ArrayList<>();
    try (TrackedDisk disk = new TrackedDisk(dir, 0, DISK_SIZE)) {
      disk.write(0, random(4 * CHUNK, 1));
      disk.swap();
      replica.initialCopy(List.of(disk.asImage()), Map.of());
      expected.add(disk.snapshot("p1.img"));
      for (int point = 2; point <= 5; point++) {
        disk.write(point * CHUNK + 100L, random(CHUNK / 2, 10 + point)); // a new chunk each
        disk.write(100, random(50, 20 + point)); // and chunk 0 every time
        replica.shipLogs(Map.of(0, List.of(disk.swap())), false);
        expected.add(disk.snapshot("p" + point + ".img"));
      }
    }
    assertThat(logObjects("vm-prune")).hasSize(4);
    assertThat(chunkObjects("vm-prune")).hasSize(4);

    BucketReplica.PruneResult result = replica.prune(2);

    assertThat(result.droppedPoints()).containsExactly(1L, 2L, 3L);
    assertThat(replica.pointIds()).containsExactly(4L, 5L);
    for (long point : List.of(4L, 5L)) {
      Path out = dir.resolve("prune-out" + point + ".img");
      replica.materialize(point, 0, out);
      assertThat(Files.mismatch(out, expected.get((int) point - 1))).as("point %d", point)
          .isEqualTo(-1);
    }
    // point 4 is now chunks alone: 0-3 (0 rewritten, 2 and 3 too) and 4 new; point 5 adds a log
    assertThat(logObjects("vm-prune")).containsExactly(replica.names().log(0, 5));
    assertThat(chunkObjects("vm-prune")).containsExactlyInAnyOrder(
        replica.names().chunk(0, 0, 4), replica.names().chunk(0, 1, 0),
        replica.names().chunk(0, 2, 4), replica.names().chunk(0, 3, 4),
        replica.names().chunk(0, 4, 4));
    assertThat(store.list(replica.names().pointsPrefix())).containsExactly(
        replica.names().manifest(4, 1), replica.names().manifest(5, 1));
    assertThat(result.chunksWritten()).isEqualTo(4);
    // 3 manifests dropped + 2 old revisions + 3 folded logs + 3 chunks replaced
    assertThat(result.objectsDeleted()).isEqualTo(11);

    assertThat(replica.prune(2).objectsDeleted()).as("a second prune has nothing to do").isZero();
  }

  @Test
  void aPruneCutShortLeavesEveryPointReadableAndTheNextPruneFinishes() throws Exception {
    BucketReplica replica = replica("vm-prune-crash");
    List<Path> expected = new ArrayList<>();
    try (TrackedDisk disk = new TrackedDisk(dir, 0, DISK_SIZE)) {
      disk.write(0, random(2 * CHUNK, 1));
      disk.swap();
      replica.initialCopy(List.of(disk.asImage()), Map.of());
      expected.add(disk.snapshot("p1.img"));
      for (int point = 2; point <= 4; point++) {
        disk.write(point * 1000L, random(CHUNK, point));
        replica.shipLogs(Map.of(0, List.of(disk.swap())), false);
        expected.add(disk.snapshot("p" + point + ".img"));
      }
    }
    List<String> manifests = new ArrayList<>();
    ObjectStore dying = new ForwardingStore(store) {
      @Override
      public void put(String key, byte[] bytes) throws IOException {
        if (key.contains("/points/") && manifests.size() == 1) {
          throw new IOException("agent killed between two manifests");
        }
        super.put(key, bytes);
        if (key.contains("/points/")) {
          manifests.add(key);
        }
      }
    };
    BucketReplica cutShort = new BucketReplica(dying, sealed, "vm-prune-crash", CHUNK, 2,
        dir.resolve("scratch-dying"));
    assertThatThrownBy(() -> cutShort.prune(3)).hasMessageContaining("between two manifests");
    assertThat(manifests).containsExactly(replica.names().manifest(2, 1));
    assertMaterializes(replica, expected, 1, 2, 3, 4);

    replica.prune(3);
    assertThat(replica.pointIds()).containsExactly(2L, 3L, 4L);
    assertMaterializes(replica, expected, 2, 3, 4);
    replica.prune(1);
    assertThat(replica.pointIds()).containsExactly(4L);
    assertMaterializes(replica, expected, 4);
    assertThat(logObjects("vm-prune-crash")).isEmpty();
  }

  private void assertMaterializes(BucketReplica replica, List<Path> expected, long... points)
      throws IOException {
    for (long point : points) {
      Path out = dir.resolve("check" + point + ".img");
      replica.materialize(point, 0, out);
      assertThat(Files.mismatch(out, expected.get((int) point - 1))).as("point %d", point)
          .isEqualTo(-1);
    }
  }

  private BucketReplica replica(String vmId) {
    return new BucketReplica(store, sealed, vmId, CHUNK, 2, dir.resolve("scratch-" + vmId));
  }

  /** An initial copy of two stored chunks, then a log per further point. */
  private BucketReplica replicaWithPoints(String vmId, int points) throws IOException {
    BucketReplica replica = replica(vmId);
    Path diskDir = Files.createDirectories(dir.resolve(vmId));
    try (TrackedDisk disk = new TrackedDisk(diskDir, 0, DISK_SIZE)) {
      disk.write(0, random(2 * CHUNK, 1));
      disk.swap();
      replica.initialCopy(List.of(disk.asImage()), Map.of());
      for (int point = 2; point <= points; point++) {
        disk.write(CHUNK + 5L * point, random(1000, point));
        replica.shipLogs(Map.of(0, List.of(disk.swap())), false);
      }
    }
    return replica;
  }

  private void assertRefused(BucketReplica replica, long point,
      Class<? extends SealedObjectException> error, String key) {
    Path out = dir.resolve("refused.img");
    assertThatThrownBy(() -> replica.materialize(point, 0, out))
        .isInstanceOf(error)
        .satisfies(e -> assertThat(((SealedObjectException) e).key()).isEqualTo(key));
    assertThat(out).doesNotExist();
    assertThat(dir.resolve("refused.img.partial")).doesNotExist();
  }

  private List<String> chunkObjects(String vmId) throws IOException {
    return store.list("vms/" + vmId + "/").stream().filter(k -> k.contains("/chunk-")).toList();
  }

  private List<String> logObjects(String vmId) throws IOException {
    return store.list("vms/" + vmId + "/").stream().filter(k -> k.contains("/log-")).toList();
  }

  private static boolean contains(byte[] haystack, byte[] needle) {
    return new String(haystack, StandardCharsets.ISO_8859_1)
        .contains(new String(needle, StandardCharsets.ISO_8859_1));
  }

  static byte[] random(int length, long seed) {
    byte[] b = new byte[length];
    new Random(seed).nextBytes(b);
    return b;
  }
}
