package io.siterecovery.workers.cli;

import static io.siterecovery.workers.cli.OperatorCommands.options;
import static io.siterecovery.workers.cli.OperatorCommands.withClient;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.SalvageInfo;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.failback.FailbackInput;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.ChangeRecoveryPoint;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import java.util.Map;
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

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = FailoverWorkflow.workflowId(vm);
        client.newUntypedWorkflowStub(id).signal("changeRecoveryPoint",
            new ChangeRecoveryPoint(point));
        System.out.printf("sent 'changeRecoveryPoint' %s to %s; the points tried show in: "
            + "./site-recovery status %s%n", point, id, vm);
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

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = ReprotectWorkflow.workflowId(vm);
        ReprotectWorkflow wf = client.newWorkflowStub(ReprotectWorkflow.class,
            options(id, Summaries.reprotect(vm, policy)));
        io.temporal.client.WorkflowClient.start(wf::reprotect,
            new ReprotectInput(vm, shutDownOldSource, policy));
        System.out.printf("started %s; it ends with protect-%s running in the new direction: "
            + "./site-recovery status %s%n", id, vm, vm);
        return 0;
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

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = FailbackWorkflow.workflowId(vm);
        FailbackWorkflow wf = client.newWorkflowStub(FailbackWorkflow.class,
            options(id, Summaries.failback(vm, !noReprotect)));
        io.temporal.client.WorkflowClient.start(wf::failback, new FailbackInput(vm, !noReprotect, policy));
        System.out.printf("started %s; once failover-%s awaits commit: ./site-recovery commit %s"
            + "%n", id, vm, vm);
        return 0;
      });
    }
  }

  @Command(name = "salvage", description = "List writes an old source held that never reached "
      + "its replica, saved by Reprotect; --delete ID removes them (nothing else does).")
  static final class Salvage implements Callable<Integer> {
    @Option(names = "--delete", description = "salvage id to delete, on the site that holds it")
    String delete;

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      SiteRecoveryConfig config = options.resolve();
      int found = 0;
      for (Map.Entry<String, String> site : config.sites().entrySet()) {
        AgentClient agent = new AgentClient(site.getValue(), config.operatorCredentials(),
            Identity.site(site.getKey()));
        for (SalvageInfo s : agent.salvaged()) {
          if (delete != null) {
            if (s.id().equals(delete)) {
              agent.deleteSalvaged(delete);
              System.out.printf("deleted %s on %s (%s)%n", delete, site.getKey(), s.path());
              return 0;
            }
            continue;
          }
          found++;
          System.out.printf("%s on %s: VM %s, %s in %d ranges written %s .. %s, saved %s%n  %s%n",
              s.id(), s.site(), s.vm(), Sizes.format(s.bytes()), s.rangeCount(), s.firstWrite(),
              s.lastWrite(), s.savedAt(), s.path());
          s.ranges().forEach(r -> System.out.printf("    %s at %d, %s%n", r.disk(), r.offset(),
              Sizes.format(r.length())));
        }
      }
      if (delete != null) {
        System.err.println("no salvaged writes with id " + delete + " on any site");
        return 1;
      }
      if (found == 0) {
        System.out.println("no salvaged writes on any site");
      }
      return 0;
    }
  }
}
