package io.siterecovery.workers.bench;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/** Entry point of {@code site-recovery bench}: runs each benchmark and prints a results table. */
public final class Bench {
  private Bench() {}

  public static void run(Path dir, long denseSize, PrintStream out) throws Exception {
    empty(dir);
    Files.createDirectories(dir);
    List<Measured> results;
    try (DataPlaneBench bench = new DataPlaneBench(dir, out)) {
      results = bench.run(denseSize);
    }
    out.println();
    out.println("| what | ours | reference (same run) | ratio | target | |");
    out.println("|---|---|---|---|---|---|");
    results.forEach(r -> out.println(r.row()));
    empty(dir);
  }

  private static void empty(Path dir) throws IOException {
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
