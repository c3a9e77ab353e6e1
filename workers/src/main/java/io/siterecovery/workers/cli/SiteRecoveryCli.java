package io.siterecovery.workers.cli;

import picocli.CommandLine;
import picocli.CommandLine.Command;

@Command(name = "site-recovery", mixinStandardHelpOptions = true, version = "site-recovery 0.1.0",
    description = "Disaster recovery for virtual machines, run as Temporal workflows.",
    subcommands = {DevCommand.class, DemoCommand.class, WorkerCommand.class, AgentCommand.class,
        VmCommand.class, OperatorCommands.Protect.class, OperatorCommands.Status.class,
        OperatorCommands.Failover.class, OperatorCommands.Commit.class,
        OperatorCommands.Cancel.class, OperatorCommands.Cleanup.class, OperatorCommands.Signal.class,
        OperatorCommands.SetPolicy.class, LifecycleCommands.ChangePoint.class,
        LifecycleCommands.Reprotect.class, LifecycleCommands.Failback.class,
        LifecycleCommands.Salvage.class, BenchCommand.class, CertsCommand.class})
public final class SiteRecoveryCli {
  public static void main(String[] args) {
    System.exit(new CommandLine(new SiteRecoveryCli())
        .setExecutionExceptionHandler((e, cmd, parsed) -> {
          cmd.getErr().println("error: " + (e.getMessage() != null ? e.getMessage() : e));
          return 2;
        }).execute(args));
  }
}
