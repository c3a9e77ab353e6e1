package io.siterecovery.workers.bench;

import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.nbd.NbdClient;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Log apply on the replica against {@code dd ... bs=1M conv=fsync}: a protected VM whose initial
 * copy is complete (so the replica keeps undo data for its recovery points, as in production)
 * gets N MiB of random data written through our NBD export, 1 MiB per write; one delta cycle
 * ({@code AgentClient.replicate}: seal, verify, ship over HTTP, apply) is timed, then {@code dd}
 * writes the same bytes to a new file. Both start with no dirty pages in the host. Three rounds,
 * alternating; the medians are compared, as rates of the N MiB the guest wrote.
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
      DiskFiles.fillRandom(source, n, 1);
      sites.protect("apply", n);
      Path data = dir.resolve("log-data.bin");
      Path target = dir.resolve("dd-target.img");
      DiskFiles.fillRandom(data, 16 * MIB, 2);
      writeThroughNbd(sites, data, 16 * MIB); // a first small cycle compiles the apply path
      sites.source.replicate("apply");

      List<Double> ours = new ArrayList<>();
      List<Double> dd = new ArrayList<>();
      boolean equal = true;
      for (int round = 0; round < ROUNDS; round++) {
        DiskFiles.fillRandom(data, n, 10 + round);
        writeThroughNbd(sites, data, n);
        DiskFiles.syncAll();
        long t = System.nanoTime();
        ReplicationResult r = sites.source.replicate("apply");
        ours.add((System.nanoTime() - t) / 1e9);
        equal &= r.bytesShipped() >= n
            && DiskFiles.identical(source, sites.secondary.diskImage("apply", "disk0"));

        Files.deleteIfExists(target);
        DiskFiles.syncAll();
        t = System.nanoTime();
        ExternalTool.run(List.of("dd", "if=" + data, "of=" + target, "bs=1M", "conv=fsync"));
        dd.add((System.nanoTime() - t) / 1e9);
      }
      double oursMibps = n / (double) MIB / Measured.median(ours);
      double ddMibps = n / (double) MIB / Measured.median(dd);
      out.printf(Locale.ROOT, "log apply: %d MiB written through NBD, shipped and applied in %s s"
          + " (median %.0f MiB/s), replica identical: %s; dd conv=fsync %s s (median %.0f MiB/s)%n",
          n / MIB, seconds(ours), oursMibps, equal, seconds(dd), ddMibps);
      return List.of(new Measured("log apply: delta cycle of a " + n / MIB + " MiB log",
          String.format(Locale.ROOT, "%.0f MiB/s%s", oursMibps,
              equal ? "" : " (replica NOT identical after)"),
          String.format(Locale.ROOT, "dd conv=fsync %.0f MiB/s", ddMibps),
          oursMibps / ddMibps, "≥ 0.7×", equal && oursMibps >= 0.7 * ddMibps));
    }
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
