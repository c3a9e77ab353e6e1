package io.siterecovery.agent.objectstore;

import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prints the initial copy's throughput to s3proxy for a 256 MiB image, dense (random data) and
 * sparse (1/8 of its chunks written), and the objects stored. A figure, never a failure.
 */
class ObjectStoreThroughputTest {
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
    copy("dense", image("dense.img", 1));
    copy("sparse", image("sparse.img", 8));
  }

  private void copy(String vmId, Path image) throws Exception {
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
          + " %d objects (chunks + manifest)%n", vmId, seconds, 256 / seconds, objects);
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
