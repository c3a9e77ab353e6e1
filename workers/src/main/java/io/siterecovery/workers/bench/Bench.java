package io.siterecovery.workers.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Entry point of {@code site-recovery bench}: runs each benchmark in a scratch directory of its
 * own (emptied after it) and prints a results table. Timing never fails it; an error in one
 * benchmark is reported in its row, the others still run, and {@link #run} returns false.
 */
public final class Bench {
  /** The benchmarks by name, in the order they run. */
  public static final Set<String> NAMES = Set.of("dataplane", "resync", "apply", "memory",
      "lifecycle", "plan", "worker-kill", "rpo", "cloud");

  /**
   * The rpo benchmark's load: {@code vms} VMs writing {@code mbPerSecond} each for
   * {@code duration}, replicated every {@code frequency}.
   */
  public record Rpo(int vms, double mbPerSecond, java.time.Duration duration,
      java.time.Duration frequency) {
    public static final Rpo DEFAULT = new Rpo(20, 2, java.time.Duration.ofMinutes(1),
        java.time.Duration.ofSeconds(30));
  }

  private interface Run {
    List<Measured> run(Path dir) throws Exception;
  }

  private Bench() {}

  /** Runs the benchmarks named in {@code only} (all when empty); false if one of them failed. */
  public static boolean run(Path dir, long size, Set<String> only, PrintStream out)
      throws IOException {
    return run(dir, size, only, Rpo.DEFAULT, out);
  }

  /** The same, with the rpo benchmark's load. */
  public static boolean run(Path dir, long size, Set<String> only, Rpo rpo, PrintStream out)
      throws IOException {
    Map<String, Run> benchmarks = new LinkedHashMap<>();
    benchmarks.put("dataplane", d -> {
      try (DataPlaneBench bench = new DataPlaneBench(d, out)) {
        return bench.run(size);
      }
    });
    benchmarks.put("resync", d -> new ResyncBench(d, out).run(size));
    benchmarks.put("apply", d -> new LogApplyBench(d, out).run(size));
    benchmarks.put("memory", d -> AgentMemoryBench.run(d, out));
    benchmarks.put("lifecycle", d -> new LifecycleBench(d, out).run());
    benchmarks.put("plan", d -> new PlanBench(d, out).run());
    // A fixed 48 MiB at 2 MB/s (about 25 s): long enough to kill the worker in the middle.
    benchmarks.put("worker-kill", d -> new WorkerKillBench(d, out).run(48L << 20));
    benchmarks.put("rpo", d -> new RpoBench(d, out).run(rpo));
    benchmarks.put("cloud", d -> {
      try (CloudBench bench = new CloudBench(d, out)) {
        return bench.run(CloudBench.Sizes.of(size));
      }
    });
    empty(dir);
    List<Measured> results = new ArrayList<>();
    boolean ok = true;
    for (Map.Entry<String, Run> b : benchmarks.entrySet()) {
      if (!only.isEmpty() && !only.contains(b.getKey())) {
        continue;
      }
      Path scratch = Files.createDirectories(dir.resolve(b.getKey()));
      long t = System.nanoTime();
      try {
        results.addAll(b.getValue().run(scratch));
      } catch (Exception | AssertionError e) {
        ok = false;
        out.println(b.getKey() + " benchmark failed: " + e);
        e.printStackTrace(out);
        results.add(Measured.notRun(b.getKey() + " benchmark",
            "failed: " + String.valueOf(e).lines().findFirst().orElse("")));
      } finally {
        empty(scratch);
      }
      out.printf(java.util.Locale.ROOT, "(%s benchmark: %.0f s)%n", b.getKey(),
          (System.nanoTime() - t) / 1e9);
    }
    out.println();
    out.println("| what | ours | reference (same run) | ratio | target | |");
    out.println("|---|---|---|---|---|---|");
    results.forEach(r -> out.println(r.row()));
    empty(dir);
    return ok;
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
