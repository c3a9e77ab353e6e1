package io.siterecovery.workers.cli;

import io.siterecovery.agent.StopSignal;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.DevStack;
import java.util.Map;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import io.siterecovery.workers.dev.CloudBucket;
import picocli.CommandLine.Option;

@Command(name = "dev", description = "Run the embedded default: Temporal test server on "
    + "127.0.0.1:7233, the worker, and agents for sites primary (NBD :10809) and secondary "
    + "(NBD :10810), and the object-store site cloud: an S3 server in process (:8704) and its "
    + "recovery host (NBD :10811). Stays up until interrupted.")
final class DevCommand implements Callable<Integer> {
  @Option(names = "--data", description = "where disks and agent state live (default: ${DEFAULT-VALUE})",
      defaultValue = ".site-recovery/dev")
  Path data;

  @Option(names = "--config", description = "a configuration file whose policies and recovery "
      + "plans the embedded worker uses (read at start); its sites stay the embedded agents")
  Path config;

  @Override
  public Integer call() throws Exception {
    SiteRecoveryConfig file = config == null ? null : SiteRecoveryConfig.load(config);
    try (StopSignal stop = StopSignal.install("dev", StopSignal.DEFAULT_BOUND);
        DevStack stack = new DevStack(data, DevStack.Ports.defaults(),
            file == null ? Map.of() : file.policies(), file == null ? Map.of() : file.plans())) {
      System.out.printf("""
          site-recovery dev is up (Ctrl-C to stop)
            Temporal      %s namespace %s, task queue site-recovery
            agent primary   %s  NBD nbd://127.0.0.1:%d/<vm>/<disk>
            agent secondary %s  NBD nbd://127.0.0.1:%d/<vm>/<disk>
            site cloud      bucket %s at %s (S3, in process; objects sealed with AES-256-GCM)
                            recovery host %s  NBD nbd://127.0.0.1:%d/<vm>/<disk>
            data          %s
            certificates  %s (CA and every identity; the CLI's --certs)
          try:  ./site-recovery vm create web01 --site primary --disk 1G
                ./site-recovery protect web01
                ./site-recovery status web01
                ./site-recovery protect web02 --target cloud   (to the bucket)
          """, stack.config().temporal(), stack.config().namespace(), stack.primary().url(),
          stack.primary().nbdPort(), stack.secondary().url(), stack.secondary().nbdPort(),
          CloudBucket.BUCKET, stack.bucket().endpoint(), stack.cloud().url(),
          stack.cloud().nbdPort(),
          data.toAbsolutePath(), Path.of(stack.config().certs()).toAbsolutePath());
      stop.await();
    }
    return 0;
  }
}
