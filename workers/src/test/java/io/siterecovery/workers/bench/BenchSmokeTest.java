package io.siterecovery.workers.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.siterecovery.agent.api.AgentClient;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The benchmarks run end to end at small sizes and produce their rows; nothing here is about
 * time (the ratios are whatever they are), only that a benchmark does not break.
 */
class BenchSmokeTest {
  private static final long MIB = 1L << 20;

  @TempDir Path dir;

  private final ByteArrayOutputStream printed = new ByteArrayOutputStream();
  private final PrintStream out = new PrintStream(printed, true);

  @Test
  void logApplyComparesWithDdAndTheReplicaMatches() throws Exception {
    List<Measured> rows = new LogApplyBench(dir, out).run(64 * MIB);
    assertThat(rows).hasSize(2); // the replica's apply, then the whole delta cycle
    for (Measured row : rows) {
      assertThat(row.ratio()).isPositive();
      assertThat(row.ours()).doesNotContain("NOT as expected");
    }
  }

  @Test
  void resyncComparesWithRsyncAndSendsOnlyTheDifference() throws Exception {
    assumeTrue(ExternalTool.installed("rsync"), "rsync not installed");
    List<Measured> rows = new ResyncBench(dir, out).run(64 * MIB);
    assertThat(rows).hasSize(2);
    assertThat(rows.get(0).ours()).doesNotContain("NOT identical");
    assertThat(rows.get(1).ratio()).isEqualTo(1.0); // exactly the damaged blocks, by construction
  }

  @Test
  void cloudComparesWithRcloneAndStoresAboutWhatChanged() throws Exception {
    assumeTrue(ExternalTool.installed("rclone"), "rclone not installed");
    List<Measured> rows;
    try (CloudBench bench = new CloudBench(dir, out)) {
      rows = bench.run(CloudBench.Sizes.of(16 * MIB));
    }
    assertThat(rows).as(printed.toString()).hasSize(3);
    assertThat(rows.get(0).what()).contains("16 MiB");
    assertThat(rows.get(0).ratio()).isPositive();
    // the first read returned the bytes shipped and no chunk failed in the background fetch
    assertThat(rows.get(1).what()).contains("256 MiB VM with 4 MiB of data");
    assertThat(rows.get(1).ours()).doesNotContain("NOT");
    assertThat(rows.get(1).ratio()).isPositive();
    // sealed logs hold at least the changed bytes
    assertThat(rows.get(2).what()).contains("4 MiB changed");
    assertThat(rows.get(2).ratio()).isGreaterThanOrEqualTo(1.0);
  }

  @Test
  void cloudSizesFollowSizeWithinTheirCaps() {
    assertThat(CloudBench.Sizes.of(4L << 30)).isEqualTo(new CloudBench.Sizes(1L << 30, 256 * MIB));
    assertThat(CloudBench.Sizes.of(512 * MIB)).isEqualTo(new CloudBench.Sizes(512 * MIB,
        128 * MIB));
    assertThat(CloudBench.Sizes.of(16 * MIB)).isEqualTo(new CloudBench.Sizes(16 * MIB, 4 * MIB));
    assertThatThrownBy(() -> CloudBench.Sizes.of(2 * MIB))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("too small");
  }

  @Test
  void agentProcessStartsFromThisClasspathAndReportsItsPeakRss() throws Exception {
    try (AgentProcess agent = AgentProcess.start("primary", dir.resolve("primary"),
        dir.resolve("agent.log"), List.of("-Xmx64m"), java.util.Map.of())) {
      assertThat(LocalSites.operatorClient(agent.url(), "primary").health()).isEqualTo("primary");
      assertThat(agent.nbdPort).isPositive();
      long rss = agent.rssBytes(); // read first: the agent may still be growing
      assertThat(rss).isPositive();
      assertThat(agent.peakRssBytes()).isGreaterThanOrEqualTo(rss);
    }
  }

  @Test
  void rpoIsSampledOnTheReplicaSideAndComparedWithTheFrequency() throws Exception {
    List<Measured> rows = new RpoBench(dir, out).run(new Bench.Rpo(2, 1,
        java.time.Duration.ofSeconds(20), java.time.Duration.ofSeconds(5)));
    assertThat(rows).hasSize(1);
    assertThat(rows.get(0).ratio()).as(printed.toString()).isPositive(); // samples were taken
    assertThat(rows.get(0).reference()).isEqualTo("F + 10 s = 15 s");
  }

  @Test
  void percentiles() {
    List<Double> sorted = java.util.stream.IntStream.rangeClosed(1, 100).mapToObj(i -> (double) i)
        .toList();
    assertThat(RpoBench.percentile(sorted, 0.50)).isEqualTo(50.0);
    assertThat(RpoBench.percentile(sorted, 0.99)).isEqualTo(99.0);
    assertThat(RpoBench.percentile(List.of(7.0), 0.99)).isEqualTo(7.0);
  }

  @Test
  void rowsAndMedians() {
    assertThat(Measured.median(List.of(3.0, 1.0, 2.0))).isEqualTo(2.0);
    assertThat(Measured.median(List.of(4.0, 1.0))).isEqualTo(2.5);
    assertThat(new Measured("w", "1 s", "2 s", 2, "≥ 2×", true).row())
        .isEqualTo("| w | 1 s | 2 s | 2.00× | ≥ 2× | met |");
    assertThat(Measured.notRun("w", "rsync not installed").row())
        .isEqualTo("| w | rsync not installed | — | — | — | not run |");
  }
}
