package io.siterecovery.agent.bench;

import io.siterecovery.agent.api.AgentMessages.ResyncStepRequest;
import io.siterecovery.agent.api.AgentMessages.ResyncStepResult;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.CountingProxy;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.LongBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Resync against rsync, side by side in one run (DESIGN.md, "Performance": resync of a 4 GiB disk
 * with 1 % of its blocks different, against {@code rsync --inplace --no-whole-file}; target at
 * least 2x faster, bytes sent at most 1.2x the difference). Not a test: it prints, it never fails
 * on timing.
 *
 * <p>Two in-process agents; the source disk is filled with random data, the replica made equal,
 * then 1 % of its 64 KiB blocks are overwritten with other random data. Our side is timed from
 * {@code resync/begin} to {@code resync/complete} over HTTP, the agents talking through a counting
 * relay so that the bytes on the wire are measured, not inferred. rsync then repairs a copy of the
 * same damaged replica from the same source file. Both read from a warm page cache.
 *
 * <pre>
 * mvn -q -B -o -pl agent test-compile dependency:build-classpath -Dmdep.outputFile=target/cp.txt
 * java -cp agent/target/test-classes:agent/target/classes:$(cat agent/target/cp.txt) \
 *     io.siterecovery.agent.bench.ResyncBench 4G [work dir]
 * </pre>
 */
public final class ResyncBench {
  private static final int BLOCK = 64 << 10;
  private static final double DIFFERING = 0.01;
  private static final int BLOCKS_PER_STEP = 8192; // 512 MiB per step at 64 KiB

  private ResyncBench() {}

  public static void main(String[] args) throws Exception {
    long size = parseSize(args.length > 0 ? args[0] : "4G");
    Path root = args.length > 1 ? Files.createDirectories(Path.of(args[1]))
        : Files.createTempDirectory("resync-bench");
    System.out.printf(Locale.ROOT, "resync bench: %s disk, %.0f %% of %d KiB blocks differ, in %s%n",
        human(size), DIFFERING * 100, BLOCK >> 10, root);
    try (AgentPair agents = AgentPair.start(root);
        CountingProxy wire = CountingProxy.to(agents.secondary.url())) {
      agents.p.createVm("bench", List.of(size));
      agents.p.enableProtection("bench", agents.secondary.site(), wire.url());
      Path source = agents.primary.diskImage("bench", "disk0");
      Path replica = agents.secondary.diskImage("bench", "disk0");

      long t = System.nanoTime();
      fillRandom(source, size, 1);
      copyInPlace(source, replica);
      agents.p.replicate("bench"); // generation 1 (empty): the replica is consistent
      agents.p.completeInitialReplication("bench");
      long blocks = size / BLOCK;
      int differing = (int) Math.round(blocks * DIFFERING);
      TreeSet<Long> damaged = new TreeSet<>();
      SplittableRandom rnd = new SplittableRandom(2);
      while (damaged.size() < differing) {
        damaged.add(rnd.nextLong(blocks));
      }
      overwriteBlocks(replica, damaged, rnd);
      Path rsyncCopy = root.resolve("rsync-replica.img");
      Files.deleteIfExists(rsyncCopy);
      Files.createFile(rsyncCopy);
      copyInPlace(replica, rsyncCopy);
      long differingBytes = (long) differing * BLOCK;
      // Neither side should pay for the preparation's writes: flush them to disk now (a resync
      // step makes the replica durable, rsync --inplace does not sync), and warm the JIT up as in
      // a long-running agent (SHA-256 runs interpreted until it is compiled to SHA-NI code, and
      // so do the HTTP client and server).
      for (Path f : List.of(source, replica, rsyncCopy)) {
        try (FileChannel ch = FileChannel.open(f, StandardOpenOption.WRITE)) {
          ch.force(true);
        }
      }
      warmUp(agents);
      System.out.printf(Locale.ROOT, "prepared in %.1f s: %d of %d blocks differ (%s)%n",
          seconds(t), differing, blocks, human(differingBytes));

      // ours
      wire.reset();
      com.sun.management.OperatingSystemMXBean os = (com.sun.management.OperatingSystemMXBean)
          java.lang.management.ManagementFactory.getOperatingSystemMXBean();
      long cpu = os.getProcessCpuTime();
      t = System.nanoTime();
      long g = agents.p.beginResync("bench").generation();
      List<String> phases = new ArrayList<>();
      phases.add(String.format(Locale.ROOT, "begin %.2f s", seconds(t)));
      long cursor = 0;
      long sent = 0;
      long found = 0;
      int steps = 0;
      while (true) {
        long stepStart = System.nanoTime();
        ResyncStepResult r = agents.p.resyncStep("bench", "disk0",
            new ResyncStepRequest(cursor, BLOCKS_PER_STEP, BLOCK, null));
        sent += r.bytesSent();
        found += r.blocksDiffering();
        steps++;
        phases.add(String.format(Locale.ROOT, "step %.2f s", seconds(stepStart)));
        cursor = r.nextBlock();
        if (cursor >= r.totalBlocks()) {
          break;
        }
      }
      long completeStart = System.nanoTime();
      agents.p.completeResync("bench");
      phases.add(String.format(Locale.ROOT, "complete %.2f s", seconds(completeStart)));
      double ours = seconds(t);
      double oursCpu = (os.getProcessCpuTime() - cpu) / 1e9; // both agents: one JVM
      long up = wire.bytesUp();
      long down = wire.bytesDown();
      boolean oursEqual = Files.mismatch(source, replica) == -1;

      // rsync, on a copy of the same damaged replica
      t = System.nanoTime();
      // bash's "times" reports the CPU of its children: rsync's sender, receiver and generator
      Process rsync = new ProcessBuilder("bash", "-c",
          "rsync --inplace --no-whole-file --stats \"$1\" \"$2\" && times", "rsync",
          source.toString(), rsyncCopy.toString()).redirectErrorStream(true).start();
      String stats = new String(rsync.getInputStream().readAllBytes());
      if (!rsync.waitFor(1, TimeUnit.HOURS) || rsync.exitValue() != 0) {
        throw new IllegalStateException("rsync failed:\n" + stats);
      }
      double theirs = seconds(t);
      boolean theirsEqual = Files.mismatch(source, rsyncCopy) == -1;
      long literal = number(stats, "Literal data: ([0-9,]+)");
      long rsyncSent = number(stats, "Total bytes sent: ([0-9,]+)");
      long rsyncReceived = number(stats, "Total bytes received: ([0-9,]+)");
      Matcher times = Pattern.compile("(?m)^(\\d+)m([0-9.]+)s (\\d+)m([0-9.]+)s$").matcher(stats);
      double theirsCpu = Double.NaN;
      for (int line = 0; times.find(); line++) {
        if (line == 1) { // the second line: children
          theirsCpu = 60 * Long.parseLong(times.group(1)) + Double.parseDouble(times.group(2))
              + 60 * Long.parseLong(times.group(3)) + Double.parseDouble(times.group(4));
        }
      }

      System.out.printf(Locale.ROOT, "%nresync (generation %d, %d steps): %.2f s, %.0f MB/s of disk;"
          + " %d blocks found differing; identical after: %s%n", g, steps, ours,
          size / ours / 1e6, found, oursEqual);
      System.out.println("  " + String.join(", ", phases));
      System.out.printf(Locale.ROOT, "  CPU %.2f s (both agents, user + system)%n", oursCpu);
      System.out.printf(Locale.ROOT, "  data bytes sent %s = %.3f x the difference; on the wire "
          + "%s to the replica (%.3f x) and %s back (checksums)%n", human(sent),
          (double) sent / differingBytes, human(up), (double) up / differingBytes, human(down));
      System.out.printf(Locale.ROOT, "rsync --inplace --no-whole-file: %.2f s, %.0f MB/s of disk;"
          + " identical after: %s%n  CPU %.2f s (all its processes, user + system)%n", theirs,
          size / theirs / 1e6, theirsEqual, theirsCpu);
      System.out.printf(Locale.ROOT, "  literal data %s = %.3f x the difference; %s sent, %s"
          + " received between its processes%n", human(literal), (double) literal / differingBytes,
          human(rsyncSent), human(rsyncReceived));
      System.out.printf(Locale.ROOT, "%nCPU: resync uses %.2f x what rsync uses; cores here: %d%n",
          oursCpu / theirsCpu, Runtime.getRuntime().availableProcessors());
      System.out.printf(Locale.ROOT, "resync is %.2f x faster than rsync (target >= 2); sends"
          + " %.3f x the difference in data, %.3f x counting everything on the wire"
          + " (target <= 1.2)%n", theirs / ours, (double) sent / differingBytes,
          (double) (up + down) / differingBytes);
    }
  }

  /** Resyncs a small VM a few times, so that hashing, HTTP and JSON code are compiled. */
  private static void warmUp(AgentPair agents) throws IOException {
    long size = 128L << 20;
    agents.p.createVm("warm", List.of(size));
    agents.p.enableProtection("warm", agents.secondary.site(), agents.secondary.url());
    fillRandom(agents.primary.diskImage("warm", "disk0"), size, 3);
    copyInPlace(agents.primary.diskImage("warm", "disk0"),
        agents.secondary.diskImage("warm", "disk0"));
    agents.p.replicate("warm");
    agents.p.completeInitialReplication("warm");
    for (int round = 0; round < 5; round++) {
      overwriteBlocks(agents.secondary.diskImage("warm", "disk0"),
          new TreeSet<>(List.of(3L, 700L, 1500L)), new SplittableRandom(round));
      agents.p.beginResync("warm");
      long cursor = 0;
      while (cursor < size / BLOCK) {
        cursor = agents.p.resyncStep("warm", "disk0",
            new ResyncStepRequest(cursor, 512, BLOCK, null)).nextBlock();
      }
      agents.p.completeResync("warm");
    }
  }

  private static void fillRandom(Path file, long size, long seed) throws IOException {
    SplittableRandom rnd = new SplittableRandom(seed);
    ByteBuffer buffer = ByteBuffer.allocateDirect(8 << 20).order(ByteOrder.LITTLE_ENDIAN);
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      for (long at = 0; at < size; ) {
        buffer.clear();
        LongBuffer longs = buffer.asLongBuffer();
        while (longs.hasRemaining()) {
          longs.put(rnd.nextLong());
        }
        buffer.limit((int) Math.min(buffer.capacity(), size - at));
        while (buffer.hasRemaining()) {
          at += ch.write(buffer, at);
        }
      }
    }
  }

  /** Overwrites the target's bytes (the agents hold it open: same inode, new content). */
  private static void copyInPlace(Path from, Path to) throws IOException {
    try (FileChannel in = FileChannel.open(from, StandardOpenOption.READ);
        FileChannel out = FileChannel.open(to, StandardOpenOption.WRITE)) {
      long size = in.size();
      for (long at = 0; at < size; ) {
        at += in.transferTo(at, size - at, out.position(at));
      }
    }
  }

  private static void overwriteBlocks(Path file, TreeSet<Long> blocks, SplittableRandom rnd)
      throws IOException {
    byte[] junk = new byte[BLOCK];
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
      for (long block : blocks) {
        for (int i = 0; i < junk.length; i += 8) {
          long v = rnd.nextLong();
          for (int j = 0; j < 8; j++) {
            junk[i + j] = (byte) (v >>> (8 * j));
          }
        }
        ByteBuffer b = ByteBuffer.wrap(junk);
        long at = block * BLOCK;
        while (b.hasRemaining()) {
          at += ch.write(b, at);
        }
      }
    }
  }

  private static long number(String text, String regex) {
    Matcher m = Pattern.compile(regex).matcher(text);
    return m.find() ? Long.parseLong(m.group(1).replace(",", "")) : -1;
  }

  private static long parseSize(String s) {
    String t = s.trim().toUpperCase(Locale.ROOT);
    long unit = 1;
    if (t.endsWith("G")) {
      unit = 1L << 30;
    } else if (t.endsWith("M")) {
      unit = 1L << 20;
    }
    if (unit > 1) {
      t = t.substring(0, t.length() - 1);
    }
    long size = Long.parseLong(t) * unit;
    if (size % BLOCK != 0) {
      throw new IllegalArgumentException("size must be a multiple of " + BLOCK);
    }
    return size;
  }

  private static double seconds(long since) {
    return (System.nanoTime() - since) / 1e9;
  }

  private static String human(long bytes) {
    List<String> units = new ArrayList<>(List.of("B", "KiB", "MiB", "GiB"));
    double v = bytes;
    int u = 0;
    while (v >= 1024 && u < units.size() - 1) {
      v /= 1024;
      u++;
    }
    return String.format(Locale.ROOT, "%.1f %s", v, units.get(u));
  }
}
