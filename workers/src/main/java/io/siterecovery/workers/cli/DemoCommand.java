package io.siterecovery.workers.cli;

import io.siterecovery.workers.dev.DemoScenario;
import java.util.Map;
import io.siterecovery.workers.dev.DevStack;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.concurrent.Callable;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "demo", description = "Start the dev stack, protect two VMs while writing to "
    + "them, then take web01 round the whole lifecycle: test failover and cleanup, planned "
    + "failover and commit, Reprotect, Failback. Verifies the bytes at every stage and exits "
    + "non-zero when a verification fails.")
final class DemoCommand implements Callable<Integer> {
  @Option(names = "--data", defaultValue = ".site-recovery/demo",
      description = "where the demo's disks live; emptied first (default: ${DEFAULT-VALUE})")
  Path data;

  @Override
  public Integer call() throws Exception {
    if (Files.exists(data)) {
      try (Stream<Path> files = Files.walk(data)) {
        for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
    try (DevStack stack = new DevStack(data, DevStack.Ports.defaults(),
        Map.of(DemoScenario.POLICY, DemoScenario.policy()))) {
      System.out.printf("dev stack up: Temporal %s, agents %s and %s, data in %s%n",
          stack.config().temporal(), stack.primary().url(), stack.secondary().url(),
          data.toAbsolutePath());
      return new DemoScenario(stack, System.out).run() ? 0 : 1;
    }
  }
}
