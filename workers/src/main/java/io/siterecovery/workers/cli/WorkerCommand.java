package io.siterecovery.workers.cli;

import io.siterecovery.workers.config.ConfigFile;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.WorkerRunner;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;

@Command(name = "worker", description = "Run a worker against any Temporal server "
    + "(e.g. `temporal server start-dev`); agents are reached at the configured sites.")
final class WorkerCommand implements Callable<Integer> {
  @Mixin
  TemporalOptions options;

  @Override
  public Integer call() throws Exception {
    CountDownLatch stop = new CountDownLatch(1);
    SiteRecoveryConfig config = options.resolve();
    ConfigFile file = options.config == null ? null : new ConfigFile(options.config);
    try (WorkerRunner runner = file == null ? new WorkerRunner(config)
        : new WorkerRunner(config, file::policies, file::plans)) {
      Runtime.getRuntime().addShutdownHook(new Thread(stop::countDown));
      stop.await();
    }
    return 0;
  }
}
