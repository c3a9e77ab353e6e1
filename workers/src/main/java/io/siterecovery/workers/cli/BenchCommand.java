package io.siterecovery.workers.cli;

import io.siterecovery.workers.bench.Bench;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "bench", description = "Benchmark the data plane against cp and qemu-nbd in the "
    + "same run and print ratios (see docs/performance.md). Never fails on timing.")
final class BenchCommand implements Callable<Integer> {
  @Option(names = "--size", defaultValue = "4G", description = "dense disk size (default: ${DEFAULT-VALUE})")
  String size;

  @Option(names = "--dir", defaultValue = ".site-recovery/bench",
      description = "scratch directory, emptied first (default: ${DEFAULT-VALUE})")
  Path dir;

  @Override
  public Integer call() throws Exception {
    Bench.run(dir, Sizes.parse(size), System.out);
    return 0;
  }
}
