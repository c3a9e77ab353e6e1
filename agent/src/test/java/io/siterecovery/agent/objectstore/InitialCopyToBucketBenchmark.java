package io.siterecovery.agent.objectstore;

import io.siterecovery.agent.testing.Tools;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prints the initial copy's throughput to s3proxy for a 256 MiB image, dense (random data) and
 * sparse (1/8 of its chunks written), and the objects stored; with rclone installed, also
 * {@code rclone copy} of the dense image to the same endpoint and the ratio (the issue's
 * reference). Figures, never a failure. Not part of the normal test run (the name does not end
 * in Test); run it with
 * {@code mvn -q -B -o -pl agent test -Dtest=InitialCopyToBucketBenchmark}.
 */
class InitialCopyToBucketBenchmark {
  private static final long SIZE = 256L << 20;

  @TempDir
  static Path bucketDir;
  private static S3ProxyServer s3proxy;

  @TempDir
  Path dir;

  @BeforeAll
  static void startS3Proxy() throws Exception {
    s3proxy = S3ProxyServer.start(bucketDir);
  }

  @AfterAll
  static void stopS3Proxy() throws Exception {
    s3proxy.close();
  }

  @Test
  void initialCopyOfA256MibImage() throws Exception {
    Path dense = image("dense.img", 1);
    double ours = copy("dense", dense);
    copy("sparse", image("sparse.img", 8));
    if (Tools.find("rclone") == null) {
      System.out.println("rclone is not installed: no reference figure");
      return;
    }
    long start = System.nanoTime();
    ProcessBuilder rclone = new ProcessBuilder("rclone", "copy", "--s3-upload-cutoff", "64M",
        "--s3-chunk-size", "16M", dense.toString(), "s3proxy:" + S3ProxyServer.BUCKET + "/rclone")
        .redirectErrorStream(true).redirectOutput(dir.resolve("rclone.log").toFile());
    Map<String, String> env = rclone.environment();
    // rclone's S3 backend refuses any CA bundle over plain HTTP; the endpoint is http://
    env.remove("AWS_CA_BUNDLE");
    env.put("RCLONE_CONFIG_S3PROXY_TYPE", "s3");
    env.put("RCLONE_CONFIG_S3PROXY_PROVIDER", "Other");
    env.put("RCLONE_CONFIG_S3PROXY_ENDPOINT", s3proxy.endpoint().toString());
    env.put("RCLONE_CONFIG_S3PROXY_ACCESS_KEY_ID", S3ProxyServer.ACCESS_KEY);
    env.put("RCLONE_CONFIG_S3PROXY_SECRET_ACCESS_KEY", S3ProxyServer.SECRET_KEY);
    env.put("RCLONE_CONFIG_S3PROXY_FORCE_PATH_STYLE", "true");
    Process process = rclone.start();
    if (!process.waitFor(5, TimeUnit.MINUTES) || process.exitValue() != 0) {
      process.destroyForcibly();
      System.out.println("rclone copy failed: " + Files.readString(dir.resolve("rclone.log")));
      return;
    }
    double seconds = (System.nanoTime() - start) / 1e9;
    System.out.printf("rclone copy of the dense image to the same s3proxy: %.1f s, %.0f MiB/s;"
        + " initial copy / rclone = %.2fx%n", seconds, 256 / seconds, ours / (256 / seconds));
  }

  /** Returns MiB/s of image copied. */
  private double copy(String vmId, Path image) throws Exception {
    try (S3ObjectStore store = s3proxy.store("bench/")) {
      BucketReplica replica = new BucketReplica(store,
          new SealedObjects(new KeyEncryptionKey(new byte[32])), vmId,
          BucketReplica.DEFAULT_CHUNK_SIZE, 4, dir.resolve("scratch"));
      long start = System.nanoTime();
      replica.initialCopy(List.of(new BucketReplica.DiskImage(0, UUID.randomUUID(), image)),
          Map.of());
      double seconds = (System.nanoTime() - start) / 1e9;
      int objects = store.list(replica.names().vmPrefix()).size();
      System.out.printf("initial copy to s3proxy, %s 256 MiB image: %.1f s, %.0f MiB/s of image,"
          + " %d keys listed under the VM%n", vmId, seconds, 256 / seconds, objects);
      start = System.nanoTime();
      replica.materialize(1, 0, dir.resolve(vmId + "-materialized.img"));
      double back = (System.nanoTime() - start) / 1e9;
      System.out.printf("materialize from s3proxy, %s 256 MiB image: %.1f s, %.0f MiB/s%n",
          vmId, back, 256 / back);
      return 256 / seconds;
    }
  }

  /** Writes random data into every {@code every}-th 4 MiB chunk of a sparse 256 MiB file. */
  private Path image(String name, int every) throws Exception {
    Path image = dir.resolve(name);
    try (RandomAccessFile file = new RandomAccessFile(image.toFile(), "rw")) {
      file.setLength(SIZE);
    }
    Random random = new Random(7);
    byte[] chunk = new byte[BucketReplica.DEFAULT_CHUNK_SIZE];
    try (FileChannel ch = FileChannel.open(image, StandardOpenOption.WRITE)) {
      for (long offset = 0; offset < SIZE; offset += (long) every * chunk.length) {
        random.nextBytes(chunk);
        ch.write(ByteBuffer.wrap(chunk), offset);
      }
    }
    return image;
  }
}
