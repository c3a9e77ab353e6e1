package io.siterecovery.workers.chaos;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

/**
 * Entry point of {@code site-recovery chaos}: one harness, then one run per scenario on a VM of
 * its own, each fault at a moment drawn from the seed (printed, so a run can be replayed).
 */
public final class ChaosSuite {
  /** Cycles every 5 s: a run sees several in seconds. */
  static final Duration COPY_FREQUENCY = Duration.ofSeconds(5);
  /**
   * The policy's bandwidth cap, MB/s: stretches the 96 MiB initial copy over about 4 s, so
   * that a fault lands inside it rather than after it.
   */
  static final double BANDWIDTH_MBPS = 24;

  private ChaosSuite() {}

  /** {@code site-recovery chaos --runs N}: run i is scenario i of the catalogue, cycling. */
  public static ChaosReport run(Path dir, int runs, long seed, PrintStream out)
      throws IOException {
    return run(dir, runs, 1, seed, out);
  }

  /** The same, starting at scenario {@code first} (1-based) of the catalogue. */
  public static ChaosReport run(Path dir, int runs, int first, long seed, PrintStream out)
      throws IOException {
    List<Scenario> chosen = new ArrayList<>();
    for (int i = 0; i < runs; i++) {
      chosen.add(Scenario.CATALOGUE.get((first - 1 + i) % Scenario.CATALOGUE.size()));
    }
    return run(dir, chosen, seed, out);
  }

  public static ChaosReport run(Path dir, List<Scenario> scenarios, long seed, PrintStream out)
      throws IOException {
    out.println("chaos: seed " + seed + " (--seed " + seed + " replays these moments), "
        + scenarios.size() + " runs, data in " + dir.toAbsolutePath());
    empty(dir);
    Random random = new Random(seed);
    long[] seeds = new long[scenarios.size()];
    for (int i = 0; i < seeds.length; i++) {
      seeds[i] = random.nextLong();
    }
    List<RunResult> results = new ArrayList<>();
    List<Integer> diskFull = new ArrayList<>();
    List<Integer> sourceFull = new ArrayList<>();
    List<Integer> others = new ArrayList<>();
    for (int i = 0; i < scenarios.size(); i++) {
      Scenario.Fault f = scenarios.get(i).fault();
      (f == Scenario.Fault.REPLICA_DISK_FULL ? diskFull
          : f == Scenario.Fault.SOURCE_DISK_FULL ? sourceFull : others).add(i);
    }
    if (!others.isEmpty()) {
      try (ChaosHarness harness = new ChaosHarness(dir.resolve("stack"), COPY_FREQUENCY,
          BANDWIDTH_MBPS, null)) {
        runAll(new ChaosRun(harness, ChaosRun.Vm.NORMAL, out), scenarios, others, seeds,
            results, out);
      }
    }
    if (!diskFull.isEmpty()) {
      // The replica's data on a filesystem of its own that can be filled: a 64 MiB tmpfs.
      Path mount = Files.createDirectories(dir.resolve("replica-tmpfs"));
      String why = Tmpfs.mount(mount, "64m");
      if (why != null) {
        for (int i : diskFull) {
          out.println("run " + (i + 1) + " (" + scenarios.get(i).name() + "): skipped, " + why);
        }
      } else {
        try (ChaosHarness harness = new ChaosHarness(dir.resolve("stack-tmpfs"),
            COPY_FREQUENCY, BANDWIDTH_MBPS, mount)) {
          runAll(new ChaosRun(harness, ChaosRun.Vm.SMALL, out), scenarios, diskFull, seeds,
              results, out);
        } finally {
          Tmpfs.unmount(mount);
        }
      }
    }
    if (!sourceFull.isEmpty()) {
      // The source's data (images and .hrl logs) on a filesystem of its own: a 64 MiB tmpfs.
      Path mount = Files.createDirectories(dir.resolve("source-tmpfs"));
      String why = Tmpfs.mount(mount, "64m");
      if (why != null) {
        for (int i : sourceFull) {
          out.println("run " + (i + 1) + " (" + scenarios.get(i).name() + "): skipped, " + why);
        }
      } else {
        try (ChaosHarness harness = new ChaosHarness(dir.resolve("stack-source-tmpfs"),
            COPY_FREQUENCY, BANDWIDTH_MBPS, mount, null)) {
          runAll(new ChaosRun(harness, ChaosRun.Vm.SMALL, out), scenarios, sourceFull, seeds,
              results, out);
        } finally {
          Tmpfs.unmount(mount);
        }
      }
    }
    results.sort(java.util.Comparator.comparingInt(RunResult::run));
    ChaosReport report = new ChaosReport(seed, results);
    report.print(out);
    return report;
  }

  private static void runAll(ChaosRun runner, List<Scenario> scenarios, List<Integer> which,
      long[] seeds, List<RunResult> results, PrintStream out) {
    for (int i : which) {
      Scenario s = scenarios.get(i);
      RunResult r;
      try {
        r = runner.run(i + 1, s, seeds[i]);
      } catch (Exception e) {
        out.println("run " + (i + 1) + " failed: " + e);
        r = new RunResult(i + 1, s, null, null, 0, 0, 0, false, false,
            "error: " + String.valueOf(e).lines().findFirst().orElse(""));
      }
      results.add(r);
      out.println(ChaosReport.row(r));
    }
  }

  static void empty(Path dir) throws IOException {
    if (!Files.exists(dir)) {
      return;
    }
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }
}
