package io.siterecovery.workers.cli;

import io.siterecovery.workers.bench.Bench;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "bench", description = "Benchmark the data plane against cp, qemu-nbd, rsync, "
    + "dd and rclone in the same run and print ratios (see docs/performance.md). Never fails on "
    + "timing.")
final class BenchCommand implements Callable<Integer> {
  @Option(names = "--size", defaultValue = "4G", description = "dense disk size of the copy and "
      + "resync benchmarks; the log applied is a quarter of it; the cloud benchmark takes at "
      + "most 1G of it (default: ${DEFAULT-VALUE})")
  String size;

  @Option(names = "--dir", defaultValue = ".site-recovery/bench",
      description = "scratch directory, emptied first (default: ${DEFAULT-VALUE})")
  Path dir;

  @Option(names = "--only", split = ",", paramLabel = "NAME",
      description = "run only these benchmarks: dataplane, resync, apply, memory, lifecycle, plan, "
          + "worker-kill, rpo, cloud (default: all)")
  List<String> only = List.of();

  @Option(names = "--vms", defaultValue = "20",
      description = "rpo: number of VMs writing at once (default: ${DEFAULT-VALUE})")
  int vms;

  @Option(names = "--rate", defaultValue = "2",
      description = "rpo: MB/s each VM writes (default: ${DEFAULT-VALUE})")
  double rate;

  @Option(names = "--minutes", defaultValue = "1",
      description = "rpo: how long the VMs write while RPO is sampled (default: ${DEFAULT-VALUE})")
  double minutes;

  @Option(names = "--frequency", defaultValue = "PT30S",
      description = "rpo: the policy's copy frequency, ISO-8601 (default: ${DEFAULT-VALUE})")
  java.time.Duration frequency;

  @Override
  public Integer call() throws Exception {
    Set<String> names = new HashSet<>(only);
    names.removeAll(Bench.NAMES);
    if (!names.isEmpty()) {
      throw new IllegalArgumentException("unknown benchmark(s) " + names + "; choose among "
          + Bench.NAMES);
    }
    Bench.Rpo rpo = new Bench.Rpo(vms, rate,
        java.time.Duration.ofMillis(Math.round(minutes * 60_000)), frequency);
    return Bench.run(dir, Sizes.parse(size), Set.copyOf(only), rpo, System.out) ? 0 : 1;
  }
}
