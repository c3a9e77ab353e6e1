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
    List<Scenario> chosen = new ArrayList<>();
    for (int i = 0; i < runs; i++) {
      chosen.add(Scenario.CATALOGUE.get(i % Scenario.CATALOGUE.size()));
    }
    return run(dir, chosen, seed, out);
  }

  public static ChaosReport run(Path dir, List<Scenario> scenarios, long seed, PrintStream out)
      throws IOException {
    out.println("chaos: seed " + seed + " (--seed " + seed + " replays these moments), "
        + scenarios.size() + " runs, data in " + dir.toAbsolutePath());
    out.println("chaos: replica data dir on a tmpfs that fills up: not run (not implemented in "
        + "this harness yet)");
    empty(dir);
    Random random = new Random(seed);
    List<RunResult> results = new ArrayList<>();
    try (ChaosHarness harness = new ChaosHarness(dir, COPY_FREQUENCY, BANDWIDTH_MBPS)) {
      ChaosRun runner = new ChaosRun(harness, out);
      for (int i = 0; i < scenarios.size(); i++) {
        Scenario s = scenarios.get(i);
        long runSeed = random.nextLong();
        try {
          results.add(runner.run(i + 1, s, runSeed));
        } catch (Exception e) {
          out.println("run " + (i + 1) + " failed: " + e);
          results.add(new RunResult(i + 1, s, null, null, 0, 0, 0, false, false,
              "error: " + String.valueOf(e).lines().findFirst().orElse("")));
        }
        out.println(ChaosReport.row(results.get(results.size() - 1)));
      }
    }
    ChaosReport report = new ChaosReport(seed, results);
    report.print(out);
    return report;
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
