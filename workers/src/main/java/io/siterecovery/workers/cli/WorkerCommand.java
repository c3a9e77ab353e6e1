package io.siterecovery.workers.cli;

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
    try (WorkerRunner runner = new WorkerRunner(options.resolve())) {
      Runtime.getRuntime().addShutdownHook(new Thread(stop::countDown));
      stop.await();
    }
    return 0;
  }
}
