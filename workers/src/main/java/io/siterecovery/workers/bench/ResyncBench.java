package io.siterecovery.workers.bench;

import io.siterecovery.agent.api.AgentMessages.ResyncStepRequest;
import io.siterecovery.agent.api.AgentMessages.ResyncStepResult;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Resync against {@code rsync --ignore-times --inplace --no-whole-file}: a random source disk, its
 * replica made equal and then 1 % of its 64 KiB blocks overwritten with other random data. Ours is
 * timed from {@code resync/begin} to {@code resync/complete} over HTTP between two in-process
 * agents, in the steps the resync activity takes; rsync then repairs a copy of the same damaged
 * replica from the same source file. Warm page cache, dirty pages flushed and the JIT warmed up
 * before either. Three rounds (the same blocks damaged again with other data); the medians are
 * compared.
 */
final class ResyncBench {
  private static final int BLOCK = 64 << 10;
  private static final double DIFFERING = 0.01;
  private static final int BLOCKS_PER_STEP = 4096; // as AgentActivitiesImpl.resyncDisk
  private static final int ROUNDS = 3;

  private final Path dir;
  private final PrintStream out;

  ResyncBench(Path dir, PrintStream out) {
    this.dir = dir;
    this.out = out;
  }

  List<Measured> run(long requestedSize) throws Exception {
    long size = requestedSize / BLOCK * BLOCK;
    if (!ExternalTool.installed("rsync")) {
      return List.of(Measured.notRun("resync " + (size >> 20) + " MiB against rsync",
          "rsync not installed"));
    }
    try (LocalSites sites = new LocalSites(dir)) {
      sites.source.createVm("resync", List.of(size));
      sites.source.enableProtection("resync", sites.secondary.site());
      Path source = sites.primary.diskImage("resync", "disk0");
      Path replica = sites.secondary.diskImage("resync", "disk0");
      DiskFiles.fillRandom(source, size, 1);
      DiskFiles.copyInPlace(source, replica); // the initial copy, without the wait
      sites.source.replicate("resync");
      sites.source.completeInitialReplication("resync");

      long blocks = size / BLOCK;
      int differing = (int) Math.max(1, Math.round(blocks * DIFFERING));
      TreeSet<Long> damaged = new TreeSet<>();
      SplittableRandom rnd = new SplittableRandom(2);
      while (damaged.size() < differing) {
        damaged.add(rnd.nextLong(blocks));
      }
      long differingBytes = (long) differing * BLOCK;
      Path rsyncCopy = dir.resolve("rsync-replica.img");
      DiskFiles.copyInPlace(source, rsyncCopy);
      warmUp(sites);

      List<Double> ours = new ArrayList<>();
      List<Double> rsync = new ArrayList<>();
      long sent = 0;
      long literal = 0;
      boolean oursEqual = true;
      boolean rsyncEqual = true;
      for (int round = 0; round < ROUNDS; round++) {
        // the same blocks get the same other data in the replica and in rsync's copy of it
        DiskFiles.overwriteBlocks(replica, damaged, BLOCK, new SplittableRandom(100 + round));
        DiskFiles.overwriteBlocks(rsyncCopy, damaged, BLOCK, new SplittableRandom(100 + round));
        DiskFiles.syncAll();
        Ours r = resync(sites);
        ours.add(r.seconds);
        sent = Math.max(sent, r.sent);
        oursEqual &= r.found == differing && DiskFiles.identical(source, replica);
        out.printf(Locale.ROOT, "resync %d MiB, %d of %d blocks differ (%.1f MiB): %.2f s, CPU"
            + " %.2f s (both agents), %d found, %.1f MiB sent%n", size >> 20, differing, blocks,
            differingBytes / 1048576.0, r.seconds, r.cpu, r.found, r.sent / 1048576.0);

        long t = System.nanoTime();
        // bash's "times" prints the CPU of its children: rsync's sender, receiver and generator.
        // --ignore-times because the damaged copy can have the source's size and mtime second,
        // and rsync's quick check would then skip it without comparing a byte.
        String stats = ExternalTool.run(List.of("bash", "-c",
            "rsync --ignore-times --inplace --no-whole-file --stats \"$1\" \"$2\" && times", "rsync",
            source.toString(), rsyncCopy.toString()));
        rsync.add((System.nanoTime() - t) / 1e9);
        rsyncEqual &= DiskFiles.identical(source, rsyncCopy);
        long roundLiteral = number(stats, "Literal data: ([0-9,]+)");
        literal = Math.max(literal, roundLiteral);
        out.printf(Locale.ROOT, "rsync --ignore-times --inplace --no-whole-file: %.2f s, CPU %.2f s,"
            + " literal data %.1f MiB%n", rsync.get(round), childCpu(stats), roundLiteral / 1048576.0);
      }
      double oursSeconds = Measured.median(ours);
      double rsyncSeconds = Measured.median(rsync);
      out.printf(Locale.ROOT, "resync median %.2f s, rsync median %.2f s; identical after every"
          + " round: resync %s, rsync %s%n", oursSeconds, rsyncSeconds, oursEqual, rsyncEqual);

      String what = "resync " + (size >> 20) + " MiB, 1 % of 64 KiB blocks differ";
      String broken = !oursEqual ? " (replica NOT identical after)" : !rsyncEqual
          ? " (rsync copy NOT identical after)" : "";
      double speed = rsyncSeconds / oursSeconds;
      double bytes = (double) sent / differingBytes;
      return List.of(
          new Measured(what + ": time", String.format(Locale.ROOT, "%.2f s%s", oursSeconds,
              broken), String.format(Locale.ROOT, "rsync %.2f s", rsyncSeconds), speed,
              "≥ 3× faster", speed >= 3 && broken.isEmpty()),
          new Measured(what + ": data sent", String.format(Locale.ROOT, "%.1f MiB",
              sent / 1048576.0), String.format(Locale.ROOT, "difference %.1f MiB (rsync"
              + " literal data %.1f MiB)", differingBytes / 1048576.0, literal / 1048576.0),
              bytes, "≤ 1.2×", bytes <= 1.2 && broken.isEmpty()));
    }
  }

  private record Ours(double seconds, double cpu, long found, long sent) {}

  /** begin, steps in order to the end of the disk, complete: as the resync activities call them. */
  private static Ours resync(LocalSites sites) {
    com.sun.management.OperatingSystemMXBean os =
        (com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();
    long cpu = os.getProcessCpuTime();
    long t = System.nanoTime();
    sites.source.beginResync("resync");
    long cursor = 0;
    long sent = 0;
    long found = 0;
    while (true) {
      ResyncStepResult r = sites.source.resyncStep("resync", "disk0",
          new ResyncStepRequest(cursor, BLOCKS_PER_STEP, BLOCK, null, null));
      sent += r.bytesSent();
      found += r.blocksDiffering();
      cursor = r.nextBlock();
      if (cursor >= r.totalBlocks()) {
        break;
      }
    }
    sites.source.completeResync("resync");
    return new Ours((System.nanoTime() - t) / 1e9, (os.getProcessCpuTime() - cpu) / 1e9, found,
        sent);
  }

  /** Resyncs a small VM a few times, so that hashing, HTTP and JSON code are compiled. */
  private static void warmUp(LocalSites sites) throws Exception {
    long size = 128L << 20;
    sites.source.createVm("warm", List.of(size));
    sites.source.enableProtection("warm", sites.secondary.site());
    Path replica = sites.secondary.diskImage("warm", "disk0");
    DiskFiles.fillRandom(sites.primary.diskImage("warm", "disk0"), size, 3);
    DiskFiles.copyInPlace(sites.primary.diskImage("warm", "disk0"), replica);
    sites.source.replicate("warm");
    sites.source.completeInitialReplication("warm");
    for (int round = 0; round < 5; round++) {
      DiskFiles.overwriteBlocks(replica, List.of(3L, 700L, 1500L), BLOCK,
          new SplittableRandom(round));
      sites.source.beginResync("warm");
      for (long cursor = 0; cursor < size / BLOCK; ) {
        cursor = sites.source.resyncStep("warm", "disk0",
            new ResyncStepRequest(cursor, 512, BLOCK, null, null)).nextBlock();
      }
      sites.source.completeResync("warm");
    }
  }

  /** The user + system CPU of bash's children, from the second line "times" printed. */
  private static double childCpu(String output) {
    Matcher m = Pattern.compile("(?m)^(\\d+)m([0-9.]+)s (\\d+)m([0-9.]+)s$").matcher(output);
    double cpu = Double.NaN;
    for (int line = 0; m.find(); line++) {
      if (line == 1) {
        cpu = 60 * Long.parseLong(m.group(1)) + Double.parseDouble(m.group(2))
            + 60 * Long.parseLong(m.group(3)) + Double.parseDouble(m.group(4));
      }
    }
    return cpu;
  }

  private static long number(String text, String regex) {
    Matcher m = Pattern.compile(regex).matcher(text);
    return m.find() ? Long.parseLong(m.group(1).replace(",", "")) : -1;
  }
}
