package io.siterecovery.agent.objectstore;

import io.siterecovery.agent.nbd.NbdServer;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoverFromBucketRequest;
import io.siterecovery.agent.objectstore.recover.BucketSites;
import io.siterecovery.agent.testing.Tools;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prints instant recovery's figures for a 16 GiB VM in s3proxy with {@code
 * siterecovery.bench.mib} MiB of data (256 by default) in 1 MiB pieces spread over the disk:
 * time from the request to the first 4 KiB read over NBD (qemu-io, process start included),
 * time until the background fetch has made the whole disk local, and, with rclone installed,
 * {@code rclone copy} of the VM's objects from the same endpoint (what any full download must
 * at least fetch). Figures, never a failure. Not part of the normal test run (the name does not
 * end in Test); run it with {@code mvn -q -B -o -pl agent test -Dtest=InstantRecoveryBenchmark}.
 */
class InstantRecoveryBenchmark {
  private static final long MIB = 1L << 20;
  private static final long SIZE = 16L << 30;

  @TempDir
  Path dir;

  @Test
  void firstReadOfA16GibVmVersusAFullDownload() throws Exception {
    int dataMib = Integer.getInteger("siterecovery.bench.mib", 256);
    KeyEncryptionKey kek = new KeyEncryptionKey(new byte[32]);
    try (S3ProxyServer s3proxy = S3ProxyServer.start(Files.createDirectories(dir.resolve("s3")));
        S3ObjectStore store = s3proxy.store("bench/")) {
      BucketReplica replica = new BucketReplica(store, new SealedObjects(kek), "vm-bench",
          BucketReplica.DEFAULT_CHUNK_SIZE, 4, dir.resolve("scratch"));
      try (TrackedDisk disk = new TrackedDisk(Files.createDirectories(dir.resolve("src")), 0,
          SIZE)) {
        Random random = new Random(1);
        byte[] piece = new byte[(int) MIB];
        long stride = SIZE / dataMib;
        for (int i = 0; i < dataMib; i++) {
          random.nextBytes(piece);
          disk.write(i * stride, piece);
        }
        disk.swap();
        long started = System.nanoTime();
        replica.initialCopy(List.of(disk.asImage()), Map.of());
        System.out.printf("%nInstant recovery, 16 GiB VM with %d MiB of data in s3proxy "
            + "(initial copy took %.1f s)%n", dataMib, (System.nanoTime() - started) / 1e9);
      }
      BucketSites sites = site -> Optional.of(new BucketSites.Bucket(store, kek));
      Path data = Files.createDirectories(dir.resolve("agent"));
      int[] port = {0};
      try (BucketRecoveries recoveries = new BucketRecoveries(data, sites, n -> false,
              (vm, d) -> "nbd://127.0.0.1:" + port[0] + "/" + vm + "/" + d, 4);
          NbdServer nbd = new NbdServer(recoveries, new InetSocketAddress("127.0.0.1", 0))) {
        port[0] = nbd.port();
        long started = System.nanoTime();
        recoveries.create("bench", new RecoverFromBucketRequest("cloud", "vm-bench", null,
            false));
        double exported = (System.nanoTime() - started) / 1e9;
        long far = (dataMib - 1) * (SIZE / dataMib);
        Tools.qemuIo("nbd://127.0.0.1:" + port[0] + "/bench/disk0", "read " + far + " 4096")
            .assertOk();
        double firstRead = (System.nanoTime() - started) / 1e9;
        while (!recoveries.progress("bench").complete()) {
          Thread.sleep(50);
        }
        double whole = (System.nanoTime() - started) / 1e9;
        System.out.printf("%-48s %8.3f s%n", "exported (manifest and logs read)", exported);
        System.out.printf("%-48s %8.3f s%n", "first 4 KiB read (request to data, qemu-io)",
            firstRead);
        System.out.printf("%-48s %8.1f s  (%.0f MiB/s of data)%n",
            "background fetch: whole disk local", whole, dataMib / whole);
      }
      if (Tools.find("rclone") == null) {
        System.out.println("rclone is not installed: no reference figure");
        return;
      }
      long started = System.nanoTime();
      ProcessBuilder rclone = new ProcessBuilder("rclone", "copy", "--transfers", "4",
          "s3proxy:" + S3ProxyServer.BUCKET + "/bench/vms/vm-bench", dir.resolve("rclone")
              .toString()).redirectErrorStream(true)
          .redirectOutput(dir.resolve("rclone.log").toFile());
      Map<String, String> env = rclone.environment();
      env.remove("AWS_CA_BUNDLE"); // rclone refuses a CA bundle over plain http://
      env.put("RCLONE_CONFIG_S3PROXY_TYPE", "s3");
      env.put("RCLONE_CONFIG_S3PROXY_PROVIDER", "Other");
      env.put("RCLONE_CONFIG_S3PROXY_ENDPOINT", s3proxy.endpoint().toString());
      env.put("RCLONE_CONFIG_S3PROXY_ACCESS_KEY_ID", S3ProxyServer.ACCESS_KEY);
      env.put("RCLONE_CONFIG_S3PROXY_SECRET_ACCESS_KEY", S3ProxyServer.SECRET_KEY);
      env.put("RCLONE_CONFIG_S3PROXY_FORCE_PATH_STYLE", "true");
      Process process = rclone.start();
      if (!process.waitFor(10, TimeUnit.MINUTES) || process.exitValue() != 0) {
        process.destroyForcibly();
        System.out.println("rclone copy failed: " + Files.readString(dir.resolve("rclone.log")));
        return;
      }
      double seconds = (System.nanoTime() - started) / 1e9;
      System.out.printf("%-48s %8.1f s%n", "rclone copy of the VM's objects (4 transfers)",
          seconds);
    }
  }
}
