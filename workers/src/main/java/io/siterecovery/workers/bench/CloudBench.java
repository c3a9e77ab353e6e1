package io.siterecovery.workers.bench;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.BucketMessages.BucketCycleResult;
import io.siterecovery.agent.api.BucketMessages.BucketInitialProgress;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.agent.objectstore.S3ObjectStore;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoverFromBucketRequest;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryInfo;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryProgress;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.workers.dev.CloudBucket;
import java.io.IOException;
import java.io.PrintStream;
import java.net.URI;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;

/**
 * The cloud target against {@code rclone}, on the s3proxy that {@code dev} runs as site
 * {@code cloud} (in this process, filesystem backend): the initial copy of a dense disk through
 * the agent's routes against {@code rclone copy} of the same image to the same endpoint; instant
 * recovery of a large sparse VM (first read over NBD, whole disk local) against {@code rclone
 * copy} downloading its objects; one delta cycle's time and the bytes it stored against the bytes
 * changed. Prints ratios; never fails on timing.
 */
final class CloudBench implements AutoCloseable {
  private static final long MIB = 1L << 20;
  private static final int BLOCK = 64 << 10;
  /** The worker's copy activity asks for steps of this budget ({@code COPY_CALL_BUDGET}). */
  private static final Duration STEP = Duration.ofSeconds(3);
  private static final int ROUNDS = 3;
  private static final Duration RECOVERY_DEADLINE = Duration.ofMinutes(10);
  /** rclone's remote, defined by environment variables (they win over any rclone.conf). */
  private static final String REMOTE = "srbench";

  /**
   * {@code initial}: the dense disk of the copy row (and of the delta row's VM); {@code changed}:
   * the bytes the delta cycle ships, and the data of the instant-recovery VM, whose disk is
   * {@code RECOVERY_SPREAD} times larger.
   */
  record Sizes(long initial, long changed) {
    static final int RECOVERY_SPREAD = 64;

    /**
     * From {@code --size}: s3proxy's file backend on a small machine makes 4 GiB slow to no
     * purpose, so the copy is at most 1 GiB; the changes a quarter of it, at most 256 MiB (a
     * 16 GiB VM with 256 MiB of data to recover).
     */
    static Sizes of(long size) {
      long initial = Math.min(size, 1L << 30);
      return new Sizes(initial, Math.min(256 * MIB, initial / 4 / MIB * MIB));
    }

    Sizes {
      if (initial < 4 * MIB || changed < MIB || changed % BLOCK != 0) {
        throw new IllegalArgumentException("cloud benchmark sizes too small: " + initial + ", "
            + changed);
      }
    }
  }

  private final Path dir;
  private final PrintStream out;
  private final CloudBucket bucket;
  private final HostAgent source;
  private final HostAgent recoveryHost;
  private final AgentClient sourceClient;
  private final AgentClient recoveryClient;

  CloudBench(Path dir, PrintStream out) throws IOException {
    this.dir = dir;
    this.out = out;
    this.bucket = CloudBucket.start(dir.resolve("bucket"), 0);
    HostAgent primary = null;
    try {
      Map<String, ObjectStoreSite> sites = Map.of(CloudBucket.SITE, bucket.site());
      primary = LocalSites.agent("primary", dir.resolve("primary"), sites);
      this.recoveryHost = LocalSites.agent("recovery", dir.resolve("recovery"), sites);
    } catch (IOException | RuntimeException e) {
      if (primary != null) {
        primary.close();
      }
      bucket.close();
      throw e;
    }
    this.source = primary;
    this.sourceClient = LocalSites.operatorClient(source.url(), source.site());
    this.recoveryClient = LocalSites.operatorClient(recoveryHost.url(), recoveryHost.site());
  }

  List<Measured> run(Sizes sizes) throws Exception {
    boolean rclone = ExternalTool.installed("rclone");
    if (!rclone) {
      out.println("rclone not installed: the cloud benchmark's initial copy has no reference and"
          + " instant recovery is not run (apt-get install rclone)");
    } else {
      out.println("reference: " + ExternalTool.run(List.of("rclone", "version")).lines()
          .findFirst().orElse("rclone"));
    }
    List<Measured> rows = new ArrayList<>();
    String vm = "cloud-dense";
    rows.add(initialCopy(vm, sizes.initial(), rclone));
    rows.add(instantRecovery(sizes.changed() * Sizes.RECOVERY_SPREAD, sizes.changed(), rclone));
    rows.add(deltaCycle(vm, sizes.initial(), sizes.changed()));
    return rows;
  }

  /**
   * Row 1. Both sides warm up on a smaller image first (our agent's copy path and the SDK's
   * connections; rclone and s3proxy's paths). Then three rounds, the order swapped each round,
   * each copying the same dense image from a synced page cache to prefixes no one has written:
   * ours a new VM with that image, through the routes in the worker's 3 s steps; rclone the
   * VM's image file, two ways (see {@link RcloneUpload}), the faster of which is the reference.
   * The VM of the last round is left protected for the delta row.
   */
  private Measured initialCopy(String vm, long size, boolean rclone) throws Exception {
    long warmSize = Math.min(64 * MIB, size);
    sourceClient.createVm(vm + "-warm-up", List.of(warmSize));
    Path warmImage = source.diskImage(vm + "-warm-up", "disk0");
    DiskFiles.fillRandom(warmImage, warmSize, 3);
    double warm = copyToBucket(vm + "-warm-up").seconds();
    String warmRclone = "";
    if (rclone) {
      RcloneUpload r = rcloneUpload(warmImage, "rclone-warm-up");
      warmRclone = String.format(Locale.ROOT, ", rclone %.2f s and %.2f s", r.parts(),
          r.onePut());
    }
    out.printf(Locale.ROOT, "warm-up: %d MiB to the bucket, ours %.2f s%s (not measured)%n",
        warmSize / MIB, warm, warmRclone);

    String what = "initial replication to the bucket, " + size / MIB
        + " MiB random data (--size, at most 1 GiB)";
    Path reference = dir.resolve("dense.img");
    DiskFiles.fillRandom(reference, size, 4);
    double mib = size / (double) MIB;
    List<Double> ours = new ArrayList<>();
    List<Double> parts = new ArrayList<>();
    List<Double> onePut = new ArrayList<>();
    for (int round = 1; round <= ROUNDS; round++) {
      String name = round == ROUNDS ? vm : vm + "-" + round;
      sourceClient.createVm(name, List.of(size));
      Path image = source.diskImage(name, "disk0");
      DiskFiles.copyInPlace(reference, image);
      boolean rcloneFirst = round % 2 == 1;
      RcloneUpload r = null;
      if (rclone && rcloneFirst) {
        r = rcloneUpload(image, "rclone-initial-" + round);
      }
      DiskFiles.syncAll();
      Copy copy = copyToBucket(name);
      if (rclone && !rcloneFirst) {
        r = rcloneUpload(image, "rclone-initial-" + round);
      }
      ours.add(copy.seconds());
      String theirs = "";
      if (r != null) {
        parts.add(r.parts());
        onePut.add(r.onePut());
        theirs = String.format(Locale.ROOT, "; rclone copy in %d MiB parts %.2f s (%.0f MiB/s),"
            + " in one PUT %.2f s (%.0f MiB/s)", partSize() / MIB, r.parts(), mib / r.parts(),
            r.onePut(), mib / r.onePut());
      }
      out.printf(Locale.ROOT, "%s, round %d: ours %.2f s (%.0f MiB/s, steps of %d s: %d, %.1f"
          + " MiB sealed)%s%n", what, round, copy.seconds(), mib / copy.seconds(),
          STEP.toSeconds(), copy.steps(), copy.bytesSent() / (double) MIB, theirs);
    }
    double mibps = mib / Measured.median(ours);
    if (!rclone) {
      return Measured.notRun(what, String.format(Locale.ROOT,
          "rclone not installed (ours %.0f MiB/s)", mibps));
    }
    double partsMibps = mib / Measured.median(parts);
    double onePutMibps = mib / Measured.median(onePut);
    double rcloneMibps = Math.max(partsMibps, onePutMibps);
    return new Measured(what, String.format(Locale.ROOT, "%.0f MiB/s", mibps),
        String.format(Locale.ROOT, "rclone copy %.0f MiB/s (%s; %s %.0f MiB/s)", rcloneMibps,
            partsMibps >= onePutMibps ? "in parts" : "one PUT",
            partsMibps >= onePutMibps ? "one PUT" : "in parts",
            Math.min(partsMibps, onePutMibps)), mibps / rcloneMibps, "≥ 1.0×",
        mibps >= rcloneMibps);
  }

  /**
   * Seconds of two {@code rclone copy} runs of the same file: in multipart parts of our store's
   * part size above its multipart threshold (the agent's own settings), and in one PUT (s3proxy's
   * file backend joins a multipart upload's parts by copying them, which one PUT does not pay).
   */
  private record RcloneUpload(double parts, double onePut) {}

  private record Copy(double seconds, int steps, long bytesSent, String bucketVmId) {}

  /** The initial copy as the worker drives it: bounded steps until the first point is in. */
  private Copy copyToBucket(String vm) {
    long t0 = System.nanoTime();
    int steps = 0;
    long sent = 0;
    BucketInitialProgress step;
    do {
      step = sourceClient.bucketInitial(vm, CloudBucket.SITE, STEP, null);
      steps++;
      sent += step.bytesSent();
    } while (!step.finished());
    return new Copy((System.nanoTime() - t0) / 1e9, steps, sent, step.bucketVmId());
  }

  /**
   * Row 2. A sparse VM with {@code data} in 1 MiB pieces spread over its disk is shipped to the
   * bucket; then, on the recovery host, from the request to the first 4 KiB read of the last
   * piece over NBD (the VM could boot), and until the whole disk is local; against {@code rclone
   * copy} downloading the VM's objects, what any recovery that downloads first must wait for.
   * Neither side is warmed up: a recovery host recovers cold.
   */
  private Measured instantRecovery(long diskSize, long data, boolean rclone) throws Exception {
    String what = "instant recovery of a " + diskSize / MIB + " MiB VM with " + data / MIB
        + " MiB of data: first 4 KiB read over NBD";
    if (!rclone) {
      out.println(what + ": not run, rclone not installed");
      return Measured.notRun(what, "rclone not installed");
    }
    String vm = "cloud-sparse";
    sourceClient.createVm(vm, List.of(diskSize));
    Path image = source.diskImage(vm, "disk0");
    DiskFiles.fillSpread(image, diskSize, data, 5);
    Copy shipped = copyToBucket(vm);
    out.printf(Locale.ROOT, "%d MiB VM with %d MiB of data shipped to the bucket in %.1f s"
        + " (%.1f MiB sealed)%n", diskSize / MIB, data / MIB, shipped.seconds(),
        shipped.bytesSent() / (double) MIB);
    long lastPiece = (data / MIB - 1) * (diskSize / MIB / (data / MIB)) * MIB;
    byte[] expected = new byte[4096];
    try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
      java.nio.ByteBuffer b = java.nio.ByteBuffer.wrap(expected);
      while (b.hasRemaining()) {
        if (ch.read(b, lastPiece + b.position()) < 0) {
          throw new IOException("short image " + image);
        }
      }
    }
    DiskFiles.syncAll();

    long t0 = System.nanoTime();
    RecoveryInfo info = recoveryClient.recoverFromBucket(vm, new RecoverFromBucketRequest(
        CloudBucket.SITE, shipped.bucketVmId(), null, false));
    double exported = (System.nanoTime() - t0) / 1e9;
    URI export = URI.create(info.exports().get(0));
    byte[] read;
    try (NbdClient nbd = new NbdClient(export.getHost(), export.getPort(),
        export.getPath().substring(1))) {
      read = nbd.read(lastPiece, expected.length);
    }
    double firstRead = (System.nanoTime() - t0) / 1e9;
    RecoveryProgress progress = awaitLocal(vm);
    double whole = (System.nanoTime() - t0) / 1e9;
    boolean right = Arrays.equals(read, expected) && progress.disks().stream()
        .allMatch(d -> d.failedChunks().isEmpty());
    recoveryClient.discardBucketRecovery(vm);

    Path download = dir.resolve("rclone-download");
    long r0 = System.nanoTime();
    rclone(List.of("copy", "--transfers", "4", REMOTE + ":" + CloudBucket.BUCKET + "/vms/"
        + shipped.bucketVmId(), download.toString()));
    double rcloneSeconds = (System.nanoTime() - r0) / 1e9;
    long downloaded = treeBytes(download);
    Bench.empty(download);
    out.printf(Locale.ROOT, "%s: exported %.2f s, first 4 KiB read %.2f s%s, whole disk local"
        + " %.1f s (%.0f MiB/s of data); rclone copy of the VM's %.1f MiB of objects %.1f s%n",
        what, exported, firstRead, right ? "" : " (read NOT as shipped, or chunks failed)",
        whole, data / MIB / whole, downloaded / (double) MIB, rcloneSeconds);
    return new Measured(what, String.format(Locale.ROOT, "%.2f s (whole disk local %.1f s)%s",
        firstRead, whole, right ? "" : " NOT as shipped"), String.format(Locale.ROOT,
        "rclone copy of its objects %.1f s", rcloneSeconds), firstRead / rcloneSeconds,
        "< 1.0× (reads before a download ends)", right && firstRead < rcloneSeconds);
  }

  /** Polls the recovery host until the background fetch has made every chunk local. */
  private RecoveryProgress awaitLocal(String vm) {
    long deadline = System.nanoTime() + RECOVERY_DEADLINE.toNanos();
    while (true) {
      RecoveryProgress p = recoveryClient.recoveryProgress(vm);
      if (p.complete()) {
        return p;
      }
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("the recovery of " + vm + " is not local after "
            + RECOVERY_DEADLINE + ": " + p);
      }
      LockSupport.parkNanos(20_000_000);
    }
  }

  /**
   * Row 3. {@code changed} bytes written through NBD in distinct 64 KiB blocks at random places
   * (so bytes written are bytes changed), then one cycle: its time, and what it added to the
   * bucket (the new files of s3proxy's backend: sealed logs and the point's manifest) against
   * the bytes changed.
   */
  private Measured deltaCycle(String vm, long diskSize, long changed) throws Exception {
    int blocks = (int) (changed / BLOCK);
    SplittableRandom random = new SplittableRandom(6);
    int[] order = random.ints(0, (int) (diskSize / BLOCK)).distinct().limit(blocks).toArray();
    byte[] block = new byte[BLOCK];
    URI export = URI.create(source.nbdUri(vm, "disk0"));
    try (NbdClient nbd = new NbdClient(export.getHost(), export.getPort(),
        export.getPath().substring(1))) {
      for (int b : order) {
        random.nextBytes(block);
        nbd.write((long) b * BLOCK, block, false);
      }
      nbd.flush();
    }
    DiskFiles.syncAll();
    Map<Path, Long> before = files(bucket.storeDir());
    long t0 = System.nanoTime();
    BucketCycleResult cycle = sourceClient.bucketCycle(vm, CloudBucket.SITE, null);
    double seconds = (System.nanoTime() - t0) / 1e9;
    long stored = 0;
    int objects = 0;
    for (Map.Entry<Path, Long> f : files(bucket.storeDir()).entrySet()) {
      if (!before.containsKey(f.getKey())) {
        stored += f.getValue();
        objects++;
      }
    }
    double ratio = stored / (double) changed;
    double mibps = changed / (double) MIB / seconds;
    String what = "delta cycle to the bucket, " + changed / MIB + " MiB changed in 64 KiB"
        + " random writes: bytes stored";
    out.printf(Locale.ROOT, "%s: point %d in %.2f s (%.0f MiB/s of changes), logs: %d, %.2f MiB"
        + " shipped, %d new objects of %.2f MiB in the bucket for %.2f MiB changed%n", what,
        cycle.pointId(), seconds, mibps, cycle.logsShipped(), cycle.bytesShipped() / (double) MIB,
        objects, stored / (double) MIB, changed / (double) MIB);
    return new Measured(what, String.format(Locale.ROOT, "%.1f MiB in %.2f s (%.0f MiB/s)",
        stored / (double) MIB, seconds, mibps), String.format(Locale.ROOT, "changed %.1f MiB",
        changed / (double) MIB), ratio, "≤ 1.1×", ratio <= 1.1);
  }

  private RcloneUpload rcloneUpload(Path file, String prefix) throws Exception {
    S3ObjectStore.Config s3 = bucket.site().config();
    // rclone reads a bare size as KiB; B says bytes
    double parts = rcloneCopy(List.of("--s3-upload-cutoff", s3.multipartThreshold() + "B",
        "--s3-chunk-size", s3.partSize() + "B"), file, prefix + "-parts");
    double onePut = rcloneCopy(List.of("--s3-upload-cutoff", "5G"), file, prefix + "-put");
    return new RcloneUpload(parts, onePut);
  }

  private double rcloneCopy(List<String> options, Path file, String prefix) throws Exception {
    List<String> args = new ArrayList<>(List.of("copy"));
    args.addAll(options);
    args.add(file.toString());
    args.add(REMOTE + ":" + CloudBucket.BUCKET + "/" + prefix);
    DiskFiles.syncAll();
    long t0 = System.nanoTime();
    rclone(args);
    return (System.nanoTime() - t0) / 1e9;
  }

  private long partSize() {
    return bucket.site().config().partSize();
  }

  /** rclone with its remote on the bucket's endpoint and keys, path-style as s3proxy needs. */
  private void rclone(List<String> args) throws Exception {
    S3ObjectStore.Config s3 = bucket.site().config();
    String var = "RCLONE_CONFIG_" + REMOTE.toUpperCase(Locale.ROOT) + "_";
    Map<String, String> env = new HashMap<>();
    env.put(var + "TYPE", "s3");
    env.put(var + "PROVIDER", "Other");
    env.put(var + "ENDPOINT", s3.endpoint().toString());
    env.put(var + "REGION", s3.region());
    env.put(var + "ACCESS_KEY_ID", s3.accessKeyId());
    env.put(var + "SECRET_ACCESS_KEY", s3.secretAccessKey());
    env.put(var + "FORCE_PATH_STYLE", "true");
    List<String> command = new ArrayList<>(List.of("rclone"));
    command.addAll(args);
    // rclone's S3 backend refuses a CA bundle over the plain http:// endpoint.
    ExternalTool.run(command, env, List.of("AWS_CA_BUNDLE"));
  }

  private static Map<Path, Long> files(Path root) throws IOException {
    Map<Path, Long> sizes = new HashMap<>();
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : walk.filter(Files::isRegularFile).toList()) {
        sizes.put(p, Files.size(p));
      }
    }
    return sizes;
  }

  private static long treeBytes(Path root) throws IOException {
    return files(root).values().stream().mapToLong(Long::longValue).sum();
  }

  @Override
  public void close() throws IOException {
    try {
      recoveryHost.close();
    } finally {
      try {
        source.close();
      } finally {
        bucket.close();
      }
    }
  }
}
