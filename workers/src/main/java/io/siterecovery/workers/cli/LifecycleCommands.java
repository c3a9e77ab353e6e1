package io.siterecovery.workers.cli;

import static io.siterecovery.workers.cli.OperatorCommands.options;
import static io.siterecovery.workers.cli.OperatorCommands.query;
import static io.siterecovery.workers.cli.OperatorCommands.started;
import static io.siterecovery.workers.cli.OperatorCommands.withClient;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.SalvageInfo;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.failback.FailbackInput;
import io.siterecovery.workflows.failback.FailbackState;
import io.siterecovery.workflows.failback.FailbackStatus;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.ChangeRecoveryPoint;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The verbs after a failover: change its point, reverse replication, failback, salvage. */
final class LifecycleCommands {
  private LifecycleCommands() {}

  @Command(name = "change-point", description = "Signal 'changeRecoveryPoint' to the VM's "
      + "failover while it awaits commit: the replica VM restarts at another retained point.")
  static final class ChangePoint implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Parameters(index = "1", description = "recovery point: rp-N, LATEST or LATEST_APP_CONSISTENT")
    String point;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = FailoverWorkflow.workflowId(vm);
        client.newUntypedWorkflowStub(id).signal("changeRecoveryPoint",
            new ChangeRecoveryPoint(point));
        output.print(new OutputOptions.Sent(id, "signal changeRecoveryPoint", point),
            () -> String.format("sent 'changeRecoveryPoint' %s to %s; the points tried show in: "
                + "./site-recovery status %s", point, id, vm));
        return 0;
      });
    }
  }

  @Command(name = "reprotect", description = "Start Reprotect after a committed failover: "
      + "protect the VM back to the site it came from, reusing its disks there.")
  static final class Reprotect implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Option(names = "--shut-down-old-source", description = "if the VM still runs on the old "
        + "site (it was never fenced), shut it down there instead of refusing")
    boolean shutDownOldSource;

    @Option(names = "--policy", description = "policy of the protection that follows")
    String policy;

    @Option(names = "--watch", description = "show progress and steps until the reverse "
        + "protection is PROTECTED")
    boolean watch;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = ReprotectWorkflow.workflowId(vm);
        ReprotectWorkflow wf = client.newWorkflowStub(ReprotectWorkflow.class,
            options(id, Summaries.reprotect(vm, policy)));
        io.temporal.client.WorkflowClient.start(wf::reprotect,
            new ReprotectInput(vm, shutDownOldSource, policy));
        return started(client, output, watch, id, String.format("started %s; it ends with "
            + "protect-%s running in the new direction: ./site-recovery status %s", id, vm, vm),
            () -> {
              ReprotectStatus r = query(client, id, ReprotectStatus.class);
              return new Watch.Poll(r, Watch.reprotect(r));
            });
      });
    }
  }

  @Command(name = "failback", description = "Start Failback: a planned failover of the VM back "
      + "to its home site (commit or cancel it as any failover), then reverse replication.")
  static final class Failback implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Option(names = "--no-reprotect", description = "stop once the VM runs at home again")
    boolean noReprotect;

    @Option(names = "--policy", description = "policy of the protection that follows")
    String policy;

    @Option(names = "--watch", description = "show the steps until its failover awaits commit, "
        + "or its end")
    boolean watch;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = FailbackWorkflow.workflowId(vm);
        FailbackWorkflow wf = client.newWorkflowStub(FailbackWorkflow.class,
            options(id, Summaries.failback(vm, !noReprotect)));
        io.temporal.client.WorkflowClient.start(wf::failback, new FailbackInput(vm, !noReprotect, policy));
        return started(client, output, watch, id, String.format("started %s; once failover-%s "
            + "awaits commit: ./site-recovery commit %s", id, vm, vm), () -> {
              FailbackStatus b = query(client, id, FailbackStatus.class);
              FailoverStatus f = b.state() != FailbackState.FAILING_OVER ? null
                  : ifStarted(client, FailoverWorkflow.workflowId(vm));
              return new Watch.Poll(b, Watch.failback(b, f, Instant.now()));
            });
      });
    }

    /** The failover a failback starts, or null in the moment before it has. */
    private static FailoverStatus ifStarted(io.temporal.client.WorkflowClient client, String id) {
      try {
        return query(client, id, FailoverStatus.class);
      } catch (io.temporal.client.WorkflowNotFoundException e) {
        return null;
      }
    }
  }

  @Command(name = "salvage", description = "List writes an old source held that never reached "
      + "its replica, saved by Reprotect; --delete ID removes them (nothing else does).")
  static final class Salvage implements Callable<Integer> {
    @Option(names = "--delete", description = "salvage id to delete, on the site that holds it")
    String delete;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    /** The JSON of a deletion: what was removed, and where. */
    record Deleted(String deleted, String site, String path) {}

    @Override
    public Integer call() {
      SiteRecoveryConfig config = options.resolve();
      List<SalvageInfo> found = new ArrayList<>();
      for (Map.Entry<String, String> site : config.sites().entrySet()) {
        AgentClient agent = new AgentClient(site.getValue(), config.operatorCredentials(),
            Identity.site(site.getKey()));
        for (SalvageInfo s : agent.salvaged()) {
          if (delete == null) {
            found.add(s);
          } else if (s.id().equals(delete)) {
            agent.deleteSalvaged(delete);
            output.print(new Deleted(delete, site.getKey(), s.path()), () -> String.format(
                "deleted %s on %s (%s)", delete, site.getKey(), s.path()));
            return 0;
          }
        }
      }
      if (delete != null) {
        System.err.println("no salvaged writes with id " + delete + " on any site");
        return 1;
      }
      output.print(found, () -> found.isEmpty() ? "no salvaged writes on any site"
          : found.stream().map(Salvage::text).collect(Collectors.joining("\n")));
      return 0;
    }

    private static String text(SalvageInfo s) {
      StringBuilder b = new StringBuilder(String.format("%s on %s: VM %s, %s in %d ranges "
          + "written %s .. %s, saved %s%n  %s", s.id(), s.site(), s.vm(), Sizes.format(s.bytes()),
          s.rangeCount(), s.firstWrite(), s.lastWrite(), s.savedAt(), s.path()));
      s.ranges().forEach(r -> b.append(String.format("%n    %s at %d, %s", r.disk(), r.offset(),
          Sizes.format(r.length()))));
      return b.toString();
    }
  }
}
