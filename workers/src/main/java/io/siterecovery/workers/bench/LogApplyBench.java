package io.siterecovery.workers.bench;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.api.AgentMessages.ApplyRequest;
import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.hrl.HrlHeader;
import io.siterecovery.agent.hrl.HrlWriter;
import io.siterecovery.agent.nbd.NbdClient;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.time.Instant;
import java.util.Locale;
import java.util.UUID;

/**
 * Log apply on the replica against {@code dd ... bs=1M conv=fsync} of the same bytes, measured two
 * ways on a protected VM whose initial copy is complete (so the replica keeps undo data for its
 * recovery points, as in production):
 *
 * <ul>
 *   <li>the replica's apply: a sealed log of N MiB (1 MiB records of random data) is staged on the
 *       replica with {@code sendLog}, untimed, then one {@code applyLogs} is timed: verify, capture
 *       and force the undo data, write and force the image, record the point. This is the row the
 *       target is about.
 *   <li>the whole delta cycle: N MiB written through our NBD export, then one
 *       {@code AgentClient.replicate} is timed: seal, ship over HTTP (checked on arrival), apply.
 * </ul>
 *
 * <p>Every measurement starts with no dirty pages in the host. Three rounds of each, alternating
 * with dd; the medians are compared, as rates of N MiB.
 */
final class LogApplyBench {
  private static final long MIB = LocalSites.MIB;
  private static final int ROUNDS = 3;

  private final Path dir;
  private final PrintStream out;

  LogApplyBench(Path dir, PrintStream out) {
    this.dir = dir;
    this.out = out;
  }

  /** N is a quarter of {@code size}, at least 64 MiB; the disk is N MiB, dense. */
  List<Measured> run(long size) throws Exception {
    long n = Math.max(64 * MIB, size / 4 / MIB * MIB);
    try (LocalSites sites = new LocalSites(dir)) {
      sites.source.createVm("apply", List.of(n));
      Path source = sites.primary.diskImage("apply", "disk0");
      Path replica = sites.secondary.diskImage("apply", "disk0");
      DiskFiles.fillRandom(source, n, 1);
      sites.protect("apply", n);
      Path data = dir.resolve("log-data.bin");
      DiskFiles.fillRandom(data, 16 * MIB, 2);
      writeThroughNbd(sites, data, 16 * MIB); // a first small cycle compiles the apply path
      sites.source.replicate("apply");

      Rounds cycle = new Rounds();
      for (int round = 0; round < ROUNDS; round++) {
        DiskFiles.fillRandom(data, n, 10 + round);
        writeThroughNbd(sites, data, n);
        DiskFiles.syncAll();
        long t = System.nanoTime();
        ReplicationResult r = sites.source.replicate("apply");
        cycle.ours.add((System.nanoTime() - t) / 1e9);
        cycle.equal &= r.bytesShipped() >= n && DiskFiles.identical(source, replica);
        cycle.dd.add(dd(data));
      }
      // From here on the replica runs ahead of its source: these logs are made by the bench.
      AgentClient target = new AgentClient(sites.secondary.url(),
          LocalSites.credentials(Identity.site("primary")), Identity.site("secondary"));
      UUID diskId = sites.secondary.vms().get("apply").disk("disk0").id();
      Rounds apply = new Rounds();
      for (int round = 0; round < ROUNDS; round++) {
        DiskFiles.fillRandom(data, n, 20 + round);
        long generation = sites.secondary.vms().get("apply").record().replica()
            .appliedGeneration() + 1;
        Path log = sealedLog(diskId, generation, n, data);
        target.sendLog("apply", "disk0", generation, log);
        Files.delete(log);
        DiskFiles.syncAll();
        long t = System.nanoTime();
        target.applyLogs("apply", new ApplyRequest(generation, Instant.now(), false, null));
        apply.ours.add((System.nanoTime() - t) / 1e9);
        apply.equal &= DiskFiles.identical(data, replica);
        apply.dd.add(dd(data));
      }
      out.printf(Locale.ROOT, "log apply on the replica: %d MiB staged log applied (undo data "
          + "kept) in %s s, replica as logged: %s; dd conv=fsync %s s%n", n / MIB,
          seconds(apply.ours), apply.equal, seconds(apply.dd));
      out.printf(Locale.ROOT, "delta cycle: %d MiB written through NBD, sealed, shipped and "
          + "applied in %s s, replica identical: %s; dd conv=fsync %s s%n", n / MIB,
          seconds(cycle.ours), cycle.equal, seconds(cycle.dd));
      return List.of(apply.row("log apply on the replica: a " + n / MIB + " MiB log, undo kept",
          n), cycle.row("delta cycle of a " + n / MIB + " MiB log: seal, ship, apply", n));
    }
  }

  /** Times of one measurement and of the dd runs alternating with it. */
  private static final class Rounds {
    final List<Double> ours = new ArrayList<>();
    final List<Double> dd = new ArrayList<>();
    boolean equal = true;

    Measured row(String what, long bytes) {
      double oursMibps = bytes / (double) MIB / Measured.median(ours);
      double ddMibps = bytes / (double) MIB / Measured.median(dd);
      return new Measured(what, String.format(Locale.ROOT, "%.0f MiB/s%s", oursMibps,
          equal ? "" : " (replica NOT as expected after)"),
          String.format(Locale.ROOT, "dd conv=fsync %.0f MiB/s", ddMibps),
          oursMibps / ddMibps, "≥ 0.5×", equal && oursMibps >= 0.5 * ddMibps);
    }
  }

  private double dd(Path data) throws IOException, InterruptedException {
    Path target = dir.resolve("dd-target.img");
    Files.deleteIfExists(target);
    DiskFiles.syncAll();
    long t = System.nanoTime();
    ExternalTool.run(List.of("dd", "if=" + data, "of=" + target, "bs=1M", "conv=fsync"));
    return (System.nanoTime() - t) / 1e9;
  }

  /** A sealed log that writes {@code data} over the whole disk, 1 MiB per record. */
  private Path sealedLog(UUID diskId, long generation, long n, Path data) throws IOException {
    Path log = dir.resolve("bench-" + generation + ".hrl");
    try (InputStream in = Files.newInputStream(data);
        HrlWriter w = HrlWriter.create(log, new HrlHeader(diskId, generation, n,
            System.currentTimeMillis()))) {
      for (long at = 0; at < n; at += MIB) {
        w.appendWrite(at, ByteBuffer.wrap(in.readNBytes((int) MIB)));
      }
      w.seal();
    }
    return log;
  }

  /** Writes the first {@code bytes} of {@code file} to the VM's disk from offset 0, then flushes. */
  private static void writeThroughNbd(LocalSites sites, Path file, long bytes) throws IOException {
    try (NbdClient nbd = new NbdClient("127.0.0.1", sites.primary.nbdPort(), "apply/disk0");
        InputStream in = Files.newInputStream(file)) {
      for (long at = 0; at < bytes; at += MIB) {
        nbd.write(at, in.readNBytes((int) MIB), false);
      }
      nbd.flush();
    }
  }

  private static String seconds(List<Double> times) {
    return String.join(", ", times.stream().map(s -> String.format(Locale.ROOT, "%.2f", s))
        .toList());
  }
}
