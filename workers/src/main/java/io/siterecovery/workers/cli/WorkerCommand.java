package io.siterecovery.workers.cli;

import io.siterecovery.agent.StopSignal;
import io.siterecovery.workers.config.ConfigFile;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.WorkerRunner;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(name = "worker", description = "Run a worker against any Temporal server "
    + "(e.g. `temporal server start-dev`); agents are reached at the configured sites.")
final class WorkerCommand implements Callable<Integer> {
  @Mixin
  TemporalOptions options;

  @Override
  public Integer call() throws Exception {
    SiteRecoveryConfig config = options.resolve();
    ConfigFile file = options.config == null ? null : new ConfigFile(options.config);
    try (StopSignal stop = StopSignal.install("worker", StopSignal.DEFAULT_BOUND);
        WorkerRunner runner = file == null ? new WorkerRunner(config)
            : new WorkerRunner(config, file::policies, file::plans)) {
      stop.await();
    }
    return 0;
  }
}
