package io.siterecovery.workers.chaos;

import java.io.PrintStream;
import java.util.List;
import java.util.Locale;

/** The table of runs and the totals that decide the exit status. */
public record ChaosReport(long seed, List<RunResult> runs) {
  private static final double MIB = 1 << 20;

  public long injected() {
    return runs.stream().filter(r -> r.moment() != null).count();
  }

  public long recovered() {
    return runs.stream().filter(RunResult::recovered).count();
  }

  public long lostWrites() {
    return runs.stream().mapToLong(RunResult::lostWrites).sum();
  }

  public long corruptReplicas() {
    return runs.stream().filter(RunResult::corrupt).count();
  }

  /** Every run injected its fault, recovered within its limit and verified clean. */
  public boolean ok() {
    return !runs.isEmpty() && runs.stream().allMatch(RunResult::ok);
  }

  static String row(RunResult r) {
    return String.format(Locale.ROOT, "| %d | %s | %s | %s | %.0f / %.0f | %d | %s | %s |",
        r.run(), r.scenario().name(), r.moment() == null ? "not injected" : r.moment(),
        r.recovered() ? String.format(Locale.ROOT, "%.1f s", r.recoverySeconds()) : "NO",
        r.linkBytes() / MIB, r.payloadBytes() / MIB, r.lostWrites(),
        r.corrupt() ? "CORRUPT" : r.verified() ? "no" : "not verified", r.verification());
  }

  public void print(PrintStream out) {
    out.println();
    out.println("| # | fault / phase | moment (state seen) | recovered after | link MiB / written "
        + "MiB | acked writes lost | replica corrupt | final verification |");
    out.println("|---|---|---|---|---|---|---|---|");
    runs.forEach(r -> out.println(row(r)));
    out.println();
    out.printf(Locale.ROOT, "seed %d: faults injected %d, recovered %d, acknowledged-and-flushed "
        + "writes lost %d (must be 0), replicas corrupt %d (must be 0), runs not verified %d%n",
        seed, injected(), recovered(), lostWrites(), corruptReplicas(),
        runs.stream().filter(r -> !r.verified()).count());
    out.println(ok() ? "chaos: PASSED" : "chaos: FAILED");
  }
}
