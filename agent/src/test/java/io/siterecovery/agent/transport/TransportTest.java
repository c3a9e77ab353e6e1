package io.siterecovery.agent.transport;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentMessages.CopyRangeResult;
import io.siterecovery.agent.api.AgentMessages.TransferOptions;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.CountingProxy;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Transfer options between agents, measured on the wire by a counting TCP relay in front of the
 * replica's agent: compression changes no byte of the replica and sends fewer bytes for
 * compressible data; a bandwidth cap holds the achieved rate within 10 %.
 */
class TransportTest {
  private static final long MIB = 1L << 20;

  @TempDir Path tmp;
  private AgentPair agents;
  private CountingProxy proxy;

  private void startAgents() throws IOException {
    agents = AgentPair.start(tmp);
    proxy = CountingProxy.to(agents.secondary.url());
  }

  @AfterEach
  void stop() throws IOException {
    if (proxy != null) {
      proxy.close();
    }
    if (agents != null) {
      agents.close();
    }
  }

  /** Text-like data that compresses the way logs and documents on a disk do, plus some noise. */
  private static byte[] compressible(int size, long seed) {
    Random rnd = new Random(seed);
    StringBuilder text = new StringBuilder();
    while (text.length() < size) {
      text.append(String.format("2026-11-23T08:%02d:%02d.%03d INFO request id=%08d path=/api/v1/"
          + "items/%d user=%s status=%d%n", rnd.nextInt(60), rnd.nextInt(60), rnd.nextInt(1000),
          rnd.nextInt(100_000_000), rnd.nextInt(5000), List.of("ana", "bo", "chen").get(
              rnd.nextInt(3)), rnd.nextInt(10) == 0 ? 404 : 200));
    }
    byte[] bytes = text.substring(0, size).getBytes(StandardCharsets.US_ASCII);
    byte[] noise = new byte[size / 16];
    rnd.nextBytes(noise);
    System.arraycopy(noise, 0, bytes, size / 2, noise.length);
    return bytes;
  }

  private void createWithData(String vm, long size, Path content, boolean protect) {
    agents.p.createVm(vm, List.of(size));
    qemuIo(agents.primary.nbdUri(vm, "disk0"), "write -s " + content + " 0 " + size).assertOk();
    if (protect) {
      agents.primary.addPeer(agents.secondary.site(), proxy.url());
      agents.p.enableProtection(vm, agents.secondary.site());
    }
  }

  @Test
  void compressionSendsFewerBytesOnTheWireAndChangesNoByteOfTheReplica() throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    startAgents();
    long size = 16 * MIB;
    Path content = Files.write(tmp.resolve("text.bin"), compressible((int) size, 1));
    TransferOptions zstd = new TransferOptions(true, null);
    createWithData("plain", size, content, true);
    createWithData("packed", size, content, true);

    proxy.reset();
    CopyRangeResult plain = agents.p.copyRange("plain", "disk0", 0, size);
    long plainWire = proxy.bytesUp();
    proxy.reset();
    CopyRangeResult packed = agents.p.copyRange("packed", "disk0", 0, size, zstd);
    long packedWire = proxy.bytesUp();
    assertThat(packed.bytesSent()).isEqualTo(plain.bytesSent()).isEqualTo(size);
    assertThat(plainWire).as("uncompressed: the data and its framing").isBetween(size,
        size + size / 100);
    assertThat(packedWire).as("compressed").isLessThan(plainWire / 3);

    // the logs of a delta cycle, the same writes on both VMs
    Path more = Files.write(tmp.resolve("more.bin"), compressible((int) (4 * MIB), 2));
    for (String vm : List.of("plain", "packed")) {
      qemuIo(agents.primary.nbdUri(vm, "disk0"), "write -s " + more + " 2M 4M").assertOk();
    }
    proxy.reset();
    assertThat(agents.p.replicate("plain").logsShipped()).isEqualTo(1);
    long plainLogWire = proxy.bytesUp();
    proxy.reset();
    assertThat(agents.p.replicate("packed", zstd).logsShipped()).isEqualTo(1);
    long packedLogWire = proxy.bytesUp();
    assertThat(plainLogWire).isGreaterThan(4 * MIB);
    assertThat(packedLogWire).isLessThan(plainLogWire / 3);

    for (String vm : List.of("plain", "packed")) {
      agents.p.completeInitialReplication(vm);
      compareRaw(agents.primaryImage(vm, "disk0"), agents.replicaImage(vm, "disk0")).assertOk();
    }
    compareRaw(agents.replicaImage("plain", "disk0"), agents.replicaImage("packed", "disk0"))
        .assertOk();
    System.out.printf("wire bytes: copy %d plain, %d zstd; log %d plain, %d zstd%n", plainWire,
        packedWire, plainLogWire, packedLogWire);
  }

  @Test
  void aBandwidthCapHoldsTheAchievedRateWithinTenPercent() throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    startAgents();
    long size = 12 * MIB; // 12.6 MB of incompressible data at 4 MB/s: about 3 s
    byte[] random = new byte[(int) size];
    new Random(3).nextBytes(random);
    createWithData("paced", size, Files.write(tmp.resolve("random.bin"), random), true);
    double limit = 4.0;

    proxy.reset();
    long start = System.nanoTime();
    CopyRangeResult r = agents.p.copyRange("paced", "disk0", 0, size,
        new TransferOptions(false, limit));
    double seconds = (System.nanoTime() - start) / 1e9;
    long wire = proxy.bytesUp();
    // The rate on the wire, first to last byte as the relay saw them; the call's own time also
    // counts the request to the source agent and the replica's answer.
    double onWire = wire / proxy.upSeconds() / Transport.MB;
    double overall = wire / seconds / Transport.MB;
    System.out.printf("%d bytes on the wire: %.3f MB/s between first and last byte, %.3f MB/s"
        + " over the whole call (%.3f s), against a cap of %.1f%n", wire, onWire, overall,
        seconds, limit);
    assertThat(r.bytesSent()).isEqualTo(size);
    assertThat(wire).isGreaterThanOrEqualTo(size);
    assertThat(onWire).isBetween(limit * 0.9, limit * 1.1);
    assertThat(overall).as("the call itself").isBetween(limit * 0.8, limit * 1.1);
    compareRaw(agents.primaryImage("paced", "disk0"), agents.replicaImage("paced", "disk0"))
        .assertOk();
  }

  @Test
  void aCopyWithABudgetEndsOnTimeOnASlowLinkAndResumesWhereItSaidItStopped() throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    startAgents();
    long size = 3 * MIB; // 3.1 MB at 0.5 MB/s: about 6 s, so a 1 s budget stops it early
    byte[] random = new byte[(int) size];
    new Random(5).nextBytes(random);
    createWithData("budget", size, Files.write(tmp.resolve("random.bin"), random), true);
    TransferOptions slow = new TransferOptions(false, 0.5);

    long start = System.nanoTime();
    CopyRangeResult first = agents.p.copyRange("budget", "disk0", 0, size, slow,
        java.time.Duration.ofSeconds(1));
    double seconds = (System.nanoTime() - start) / 1e9;
    System.out.printf("a 1 s budget at 0.5 MB/s: %.2f s, to byte %d%n", seconds,
        first.nextOffset());
    // One 64 KiB frame after the budget is 0.13 s at this rate; the rest is the calls' overhead.
    assertThat(seconds).isLessThan(2.0);
    assertThat(first.nextOffset()).isGreaterThan(0).isLessThan(size);
    assertThat(first.bytesSent()).isEqualTo(first.nextOffset());

    for (long at = first.nextOffset(); at < size; ) {
      at = agents.p.copyRange("budget", "disk0", at, size - at, null, java.time.Duration
          .ofSeconds(1)).nextOffset();
    }
    compareRaw(agents.primaryImage("budget", "disk0"), agents.replicaImage("budget", "disk0"))
        .assertOk();
    assertThat(catchThrowableOfType(AgentException.class, () -> agents.p.copyRange("budget",
        "disk0", 0, size, null, java.time.Duration.ofHours(1))).code())
        .isEqualTo(ErrorCode.BAD_REQUEST);
  }

  /** A virtual clock: sleeping advances it, so a minute of pacing takes no real time. */
  private static final class VirtualClock implements Transport.TokenBucket.Clock {
    long now = 1_000_000_000L;

    @Override
    public long nanoTime() {
      return now;
    }

    @Override
    public void sleepNanos(long nanos) {
      now += nanos;
    }
  }

  @Test
  void theTokenBucketHoldsTheRateOverAnyTenSecondWindow() throws IOException {
    for (double mbps : new double[] {0.05, 4, 100}) {
      VirtualClock clock = new VirtualClock();
      Transport.TokenBucket bucket = new Transport.TokenBucket(mbps * Transport.MB, clock);
      Random rnd = new Random(5);
      List<long[]> releases = new ArrayList<>(); // {time, bytes}
      long start = clock.now;
      long total = 0;
      while (clock.now - start < 60_000_000_000L) {
        int n = 1 + rnd.nextInt(bucket.maxChunk());
        bucket.acquire(n);
        releases.add(new long[] {clock.now, n});
        total += n;
        clock.now += rnd.nextInt(3) == 0 ? rnd.nextInt(2_000_000) : 0; // the sender dawdles
      }
      double seconds = (clock.now - start) / 1e9;
      assertThat(total / seconds).as("%s MB/s overall", mbps)
          .isBetween(0.9 * mbps * Transport.MB, 1.01 * mbps * Transport.MB);
      long window = 10_000_000_000L;
      long inWindow = 0;
      int first = 0;
      for (long[] release : releases) {
        inWindow += release[1];
        while (releases.get(first)[0] <= release[0] - window) {
          inWindow -= releases.get(first++)[1];
        }
        assertThat((double) inWindow).as("%s MB/s, any 10 s", mbps)
            .isLessThanOrEqualTo(1.1 * mbps * Transport.MB * 10);
      }
    }
  }

  @Test
  void anEncodedBodyDecodesToTheSameBytesAndDamageIsCaught() throws IOException {
    byte[] body = new byte[5 * (int) MIB + 123]; // several frames, the last one short
    new Random(4).nextBytes(body); // random, with zeroes and text inside
    java.util.Arrays.fill(body, (int) MIB, (int) (3 * MIB), (byte) 0);
    System.arraycopy(compressible((int) MIB, 9), 0, body, (int) (3 * MIB), (int) MIB);
    TransferOptions zstd = new TransferOptions(true, null);
    byte[] wire = Transport.encode(new ByteArrayInputStream(body), zstd).readAllBytes();
    assertThat(wire.length).isLessThan(body.length - (int) MIB);
    assertThat(Transport.contentEncoding(zstd)).isEqualTo("zstd");
    assertThat(Transport.contentEncoding(null)).isNull();
    try (InputStream in = Transport.decode(new ByteArrayInputStream(wire), "zstd")) {
      assertThat(in.readAllBytes()).isEqualTo(body);
    }
    byte[] plain = Transport.encode(new ByteArrayInputStream(body), null).readAllBytes();
    assertThat(plain).isEqualTo(body);

    byte[] damaged = wire.clone();
    damaged[damaged.length / 2] ^= 0x10;
    AgentException corrupt = catchThrowableOfType(AgentException.class, () -> {
      try (InputStream in = Transport.decode(new ByteArrayInputStream(damaged), "zstd")) {
        in.readAllBytes();
      }
    });
    assertThat(corrupt).isNotNull();
    assertThat(corrupt.code()).isEqualTo(ErrorCode.TRANSFER_CORRUPT);

    for (int keep : new int[] {wire.length - 1, wire.length - 100, wire.length / 2, 3}) {
      byte[] truncated = java.util.Arrays.copyOf(wire, keep);
      AgentException cut = catchThrowableOfType(AgentException.class, () -> {
        try (InputStream in = Transport.decode(new ByteArrayInputStream(truncated), "zstd")) {
          in.readAllBytes();
        }
      });
      assertThat(cut).as("a body cut to %d of %d bytes", keep, wire.length).isNotNull();
      assertThat(cut.code()).isEqualTo(ErrorCode.TRANSFER_CORRUPT);
    }
    assertThat(catchThrowableOfType(AgentException.class, () -> {
      try (InputStream in = Transport.decode(new ByteArrayInputStream(body), "zstd")) {
        in.readAllBytes();
      }
    }).getMessage()).as("bytes that are not zstd").contains("not a zstd frame");

    assertThat(catchThrowableOfType(AgentException.class,
        () -> Transport.decode(new ByteArrayInputStream(wire), "br")).code())
        .isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(catchThrowableOfType(AgentException.class,
        () -> Transport.validate(new TransferOptions(false, 0.0))).code())
        .isEqualTo(ErrorCode.BAD_REQUEST);
  }
}
