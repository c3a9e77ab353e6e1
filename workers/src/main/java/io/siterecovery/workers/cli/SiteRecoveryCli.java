package io.siterecovery.workers.cli;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import io.temporal.client.WorkflowExecutionAlreadyStarted;
import picocli.CommandLine;
import picocli.CommandLine.Command;

@Command(name = "site-recovery", mixinStandardHelpOptions = true, version = "site-recovery 0.1.0",
    description = {"Disaster recovery for virtual machines, run as Temporal workflows.",
        "Logs go to .site-recovery/site-recovery.log (SITE_RECOVERY_LOG_FILE to move it); "
            + "--verbose anywhere also shows them here, as agent and worker always do."},
    subcommands = {DevCommand.class, DemoCommand.class, WorkerCommand.class, AgentCommand.class,
        VmCommand.class, OperatorCommands.Protect.class, OperatorCommands.Status.class,
        OperatorCommands.Failover.class, OperatorCommands.Commit.class,
        OperatorCommands.Cancel.class, OperatorCommands.Cleanup.class, OperatorCommands.Signal.class,
        OperatorCommands.SetPolicy.class, LifecycleCommands.ChangePoint.class,
        LifecycleCommands.Reprotect.class, LifecycleCommands.Failback.class,
        LifecycleCommands.Salvage.class, PlanCommand.class, BenchCommand.class,
        CertsCommand.class, ObjectStoreCommand.class, ChaosCommand.class,
        CompletionCommand.class})
public final class SiteRecoveryCli {
  /** Accepted anywhere on the command line: logs on the terminal too, not only in the file. */
  static final String VERBOSE = "--verbose";
  /** Services log to the terminal as well: their supervisor keeps what they print. */
  private static final Set<String> SERVICES = Set.of("agent", "worker");

  public static void main(String[] args) {
    List<String> rest = new ArrayList<>(Arrays.asList(args));
    boolean verbose = rest.remove(VERBOSE);
    if (!verbose && (rest.isEmpty() || !SERVICES.contains(rest.get(0)))) {
      Logger root = LoggerFactory.getLogger(Logger.ROOT_LOGGER_NAME);
      if (root instanceof ch.qos.logback.classic.Logger logback) {
        logback.detachAppender("OUT");
      }
    }
    System.exit(commandLine().execute(rest.toArray(String[]::new)));
  }

  /** The command line as main runs it: a verb's failure is one line on stderr and exit 2. */
  static CommandLine commandLine() {
    return new CommandLine(new SiteRecoveryCli())
        .setExecutionExceptionHandler((e, cmd, parsed) -> {
          cmd.getErr().println("error: " + message(e));
          return 2;
        });
  }

  private static String message(Exception e) {
    if (e instanceof WorkflowExecutionAlreadyStarted started) {
      return started.getExecution().getWorkflowId() + " already runs (one at a time per VM or "
          + "plan): see its status, or let it end first";
    }
    return e.getMessage() != null ? e.getMessage() : e.toString();
  }
}
