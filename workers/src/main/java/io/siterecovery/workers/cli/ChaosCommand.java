package io.siterecovery.workers.cli;

import io.siterecovery.workers.chaos.ChaosSuite;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "chaos", description = "Fault injection: kill -9 the worker or an agent, cut, "
    + "reset or silence the link between the agents, at random moments of a copy, a delta cycle, "
    + "a resync or a failover; print a table and totals. Exits non-zero if a run did not recover "
    + "or any acknowledged write was lost or any replica differs from its source.")
final class ChaosCommand implements Callable<Integer> {
  @Option(names = "--runs", defaultValue = "8",
      description = "number of runs; run i is scenario i of the list, cycling (default: ${DEFAULT-VALUE})")
  int runs;

  @Option(names = "--first", defaultValue = "1", description = "start at this scenario of the "
      + "list (1-based; README, \"Fault injection\") (default: ${DEFAULT-VALUE})")
  int first;

  @Option(names = "--seed", description = "seed of the fault moments (default: random, printed)")
  Long seed;

  @Option(names = "--dir", defaultValue = ".site-recovery/chaos",
      description = "scratch directory, emptied first; the processes' logs stay there "
          + "(default: ${DEFAULT-VALUE})")
  Path dir;

  @Override
  public Integer call() throws Exception {
    if (runs < 1 || first < 1) {
      throw new IllegalArgumentException("--runs and --first must be at least 1");
    }
    long s = seed != null ? seed : new java.security.SecureRandom().nextLong();
    return ChaosSuite.run(dir, runs, first, s, System.out).ok() ? 0 : 1;
  }
}
