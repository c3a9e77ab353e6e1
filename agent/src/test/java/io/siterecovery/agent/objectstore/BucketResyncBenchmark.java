package io.siterecovery.agent.objectstore;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.qemuIo;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.BucketMessages.BucketCycleResult;
import io.siterecovery.agent.api.BucketMessages.BucketInitialProgress;
import io.siterecovery.agent.api.BucketMessages.BucketResyncProgress;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.agent.testing.TestCerts;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Prints what a resync of a 256 MiB dense VM towards s3proxy costs through the agent's routes
 * (4 MiB chunks, the worker's 3 s steps): its latest point has a 64 MiB log, and 8 MiB were
 * written into the image behind the tracker's back. Figures, never a failure. Not part of the
 * normal test run (the name does not end in Test); run it with
 * {@code mvn -q -B -o -pl agent test -Dtest=BucketResyncBenchmark}.
 */
class BucketResyncBenchmark {
  private static final long MIB = 1L << 20;
  private static final long SIZE = 256 * MIB;

  @TempDir
  Path dir;

  @Test
  void resyncOf256MibWith8MibMissedThroughTheRoutes() throws Exception {
    assumeInstalled("qemu-io");
    Path config = Files.createDirectories(dir.resolve("config"));
    byte[] kek = new byte[32];
    new Random(1).nextBytes(kek);
    Files.writeString(config.resolve("kek.hex"), HexFormat.of().formatHex(kek));
    Files.writeString(config.resolve("s3.id"), S3ProxyServer.ACCESS_KEY);
    Files.writeString(config.resolve("s3.secret"), S3ProxyServer.SECRET_KEY);
    try (S3ProxyServer s3proxy = S3ProxyServer.start(Files.createDirectories(dir.resolve("s3")))) {
      Path site = Files.writeString(config.resolve("cloud.json"), "{\"endpoint\": \""
          + s3proxy.endpoint() + "\", \"region\": \"us-east-1\", \"bucket\": \""
          + S3ProxyServer.BUCKET + "\", \"accessKeyFile\": \"s3.id\", \"secretKeyFile\":"
          + " \"s3.secret\", \"kekFile\": \"kek.hex\"}");
      try (HostAgent agent = new HostAgent(new HostAgent.Settings("primary",
          dir.resolve("primary"), "127.0.0.1", 0, 0, TestCerts.site("primary"), Map.of(),
          HostAgent.Settings.LOOPBACK, false, null, null,
          Map.of("cloud", ObjectStoreSite.load("cloud", site))))) {
        AgentClient operator = TestCerts.operatorClient(agent);
        operator.createVm("bench", List.of(SIZE));
        Path image = agent.diskImage("bench", "disk0");
        write(image, 0, SIZE, 3);
        BucketInitialProgress copy;
        do {
          copy = operator.bucketInitial("bench", "cloud", Duration.ofSeconds(3), null);
        } while (!copy.finished());
        Path random = dir.resolve("random.bin");
        byte[] bytes = new byte[(int) (64 * MIB)];
        new Random(2).nextBytes(bytes);
        Files.write(random, bytes);
        qemuIo(agent.nbdUri("bench", "disk0"), "write -s " + random + " 96M 64M").assertOk();
        operator.bucketCycle("bench", "cloud", null);
        // missed by the tracker: 4 MiB inside the log's range, 4 MiB outside it
        write(image, 100 * MIB, 4 * MIB, 4);
        write(image, 200 * MIB, 4 * MIB, 5);

        long start = System.nanoTime();
        int steps = 0;
        long downloaded = 0;
        long sent = 0;
        long chunksSent = 0;
        BucketResyncProgress step;
        do {
          step = operator.bucketResync("bench", "cloud", Duration.ofSeconds(3), null);
          steps++;
          downloaded += step.bytesDownloaded();
          sent += step.bytesSent();
          chunksSent += step.chunksSent();
        } while (!step.finished());
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("resync of a 256 MiB dense disk through the routes: %.1f s, %.0f MiB/s"
            + " compared, %d steps of 3 s, %d of %d chunks differed, %d stored (%.1f MiB"
            + " sealed), %.0f MiB read back from the bucket%n", seconds, 256 / seconds, steps,
            step.differingChunks(), step.totalChunks(), chunksSent, sent / (double) MIB,
            downloaded / (double) MIB);
        start = System.nanoTime();
        BucketCycleResult cycle = operator.bucketCycle("bench", "cloud", null);
        System.out.printf("the cycle after it: %.2f s, %d logs, %.2f MiB, point %d%n",
            (System.nanoTime() - start) / 1e9, cycle.logsShipped(),
            cycle.bytesShipped() / (double) MIB, cycle.pointId());
      }
    }
  }

  /** Random data written into the image directly, where the tracker does not see it. */
  private static void write(Path image, long offset, long length, long seed) throws Exception {
    Random random = new Random(seed);
    byte[] block = new byte[(int) (4 * MIB)];
    try (FileChannel channel = FileChannel.open(image, StandardOpenOption.WRITE)) {
      for (long at = offset; at < offset + length; at += block.length) {
        random.nextBytes(block);
        ByteBuffer data = ByteBuffer.wrap(block);
        while (data.hasRemaining()) {
          channel.write(data, at + data.position());
        }
      }
      channel.force(true);
    }
  }
}
