package io.siterecovery.agent.objectstore;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.qemuIo;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.BucketMessages.BucketCycleResult;
import io.siterecovery.agent.api.BucketMessages.BucketInitialProgress;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.agent.testing.TestCerts;
import java.nio.channels.FileChannel;
import java.nio.ByteBuffer;
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
 * Prints the throughput of a VM's initial copy to s3proxy through the agent's routes (a 256 MiB
 * dense disk, 4 MiB chunks, the worker's 3 s steps, after a 64 MiB VM's copy warmed the agent up)
 * and of one delta cycle after 64 MiB of writes through NBD. Figures, never a failure. Not part of the normal test run (the name does not end
 * in Test); run it with {@code mvn -q -B -o -pl agent test -Dtest=BucketShipperBenchmark}.
 */
class BucketShipperBenchmark {
  private static final long MIB = 1L << 20;
  private static final long SIZE = 256 * MIB;

  @TempDir
  Path dir;

  @Test
  void initialCopyOf256MibAndACycleOf64MibThroughTheRoutes() throws Exception {
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
        // a first, smaller VM warms the JIT, the SDK and the connections up, as a running agent is
        operator.createVm("warm-up", List.of(SIZE / 4));
        fillDense(agent.diskImage("warm-up", "disk0"), SIZE / 4);
        BucketInitialProgress warmUp;
        do {
          warmUp = operator.bucketInitial("warm-up", "cloud", Duration.ofSeconds(3), null);
        } while (!warmUp.finished());
        operator.createVm("bench", List.of(SIZE));
        fillDense(agent.diskImage("bench", "disk0"), SIZE);

        long start = System.nanoTime();
        int steps = 0;
        BucketInitialProgress step;
        do {
          step = operator.bucketInitial("bench", "cloud", Duration.ofSeconds(3), null);
          steps++;
        } while (!step.finished());
        double seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("initial copy of a 256 MiB dense disk through the routes: %.1f s,"
            + " %.0f MiB/s, %d steps of 3 s, %d chunks, %.0f MiB sealed%n", seconds,
            256 / seconds, steps, step.totalChunks(), step.bytesSent() / (double) MIB);

        Path random = dir.resolve("random.bin");
        byte[] bytes = new byte[(int) (64 * MIB)];
        new Random(2).nextBytes(bytes);
        Files.write(random, bytes);
        qemuIo(agent.nbdUri("bench", "disk0"), "write -s " + random + " 96M 64M").assertOk();
        start = System.nanoTime();
        BucketCycleResult cycle = operator.bucketCycle("bench", "cloud", null);
        seconds = (System.nanoTime() - start) / 1e9;
        System.out.printf("cycle after 64 MiB of writes: %.2f s, %.0f MiB/s, %d logs, %.1f MiB"
            + " shipped, point %d%n", seconds, cycle.bytesShipped() / (double) MIB / seconds,
            cycle.logsShipped(), cycle.bytesShipped() / (double) MIB, cycle.pointId());
      }
    }
  }

  /** Random data in every chunk, written to the image before protection starts. */
  private static void fillDense(Path image, long size) throws Exception {
    Random random = new Random(3);
    byte[] block = new byte[(int) (4 * MIB)];
    try (FileChannel channel = FileChannel.open(image, StandardOpenOption.WRITE)) {
      for (long at = 0; at < size; at += block.length) {
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
