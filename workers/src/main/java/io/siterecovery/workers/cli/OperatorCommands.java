package io.siterecovery.workers.cli;

import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.siterecovery.workflows.failover.CommitPolicy;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.protection.PolicyChange;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.WorkerRunner;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.serviceclient.WorkflowServiceStubs;
import java.util.concurrent.Callable;
import java.util.function.Function;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The operator's verbs: each starts, signals or queries a workflow, as the Temporal UI would. */
final class OperatorCommands {
  private OperatorCommands() {}

  static <T> T withClient(TemporalOptions options, Function<WorkflowClient, T> action) {
    SiteRecoveryConfig config = options.resolve();
    WorkflowServiceStubs service = WorkerRunner.connect(config.temporal());
    try {
      return action.apply(WorkerRunner.client(service, config.namespace()));
    } finally {
      service.shutdownNow();
    }
  }

  /** {@code summary}: what the Web UI shows for the run (see {@link Summaries}). */
  static WorkflowOptions options(String workflowId, String summary) {
    return WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(workflowId).setStaticSummary(summary).build();
  }

  @Command(name = "protect", description = "Start ProtectVm: enable protection of a VM.")
  static final class Protect implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Option(names = "--policy", description = "replication policy (default: default)")
    String policy;

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class,
            options(ProtectVmWorkflow.workflowId(vm), Summaries.protect(vm, policy)));
        WorkflowClient.start(wf::protect, new ProtectVmInput(vm, policy));
        System.out.printf("started %s; watch it with: ./site-recovery status %s%n",
            ProtectVmWorkflow.workflowId(vm), vm);
        return 0;
      });
    }
  }

  @Command(name = "status", description = "Query the status of a VM's protection and failover.")
  static final class Status implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        boolean any = false;
        try {
          ProtectionStatus s = client.newWorkflowStub(ProtectVmWorkflow.class,
              ProtectVmWorkflow.workflowId(vm)).status();
          System.out.println(StatusText.of(s));
          any = true;
        } catch (RuntimeException e) {
          System.out.println("protection: none (" + rootMessage(e) + ")");
        }
        for (String id : java.util.List.of(FailoverWorkflow.testWorkflowId(vm),
            FailoverWorkflow.workflowId(vm))) {
          try {
            FailoverStatus f = client.newWorkflowStub(FailoverWorkflow.class, id).status();
            System.out.println(StatusText.of(f));
            any = true;
          } catch (RuntimeException e) {
            // no such failover has run for this VM: nothing to show
          }
        }
        try {
          System.out.println(StatusText.of(client.newWorkflowStub(ReprotectWorkflow.class,
              ReprotectWorkflow.workflowId(vm)).status()));
          any = true;
        } catch (RuntimeException e) {
          // never reprotected
        }
        try {
          System.out.println(StatusText.of(client.newWorkflowStub(FailbackWorkflow.class,
              FailbackWorkflow.workflowId(vm)).status()));
          any = true;
        } catch (RuntimeException e) {
          // never failed back
        }
        return any ? 0 : 1;
      });
    }
  }

  @Command(name = "failover", description = "Start a Failover of a VM to its replica site, or "
      + "with --type TEST a test VM <vm>-test there while replication carries on.")
  static final class Failover implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Option(names = "--type", defaultValue = "PLANNED", description = "PLANNED (default), "
        + "UNPLANNED or TEST")
    FailoverType type;

    @Option(names = {"--recovery-point", "--point"}, defaultValue = "LATEST", description =
        "LATEST (default), LATEST_PROCESSED, LATEST_APP_CONSISTENT or a point id such as rp-7")
    String recoveryPoint;

    @Option(names = "--max-test-duration", paramLabel = "DURATION", description = "TEST only: "
        + "ISO-8601, e.g. PT8H; cleans the test up sooner than the policy's maxTestDuration")
    java.time.Duration maxTestDuration;

    @Option(names = "--auto", paramLabel = "COMMIT|CANCEL", description = "without a commit or "
        + "cancel signal within --after, do this by itself")
    CommitPolicy.Action autoAction;

    @Option(names = "--after", paramLabel = "DURATION", description = "ISO-8601, e.g. PT1H: how "
        + "long AWAITING_COMMIT waits for a signal before --auto applies")
    java.time.Duration autoAfter;

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      if (type == FailoverType.TEST) {
        return startTest();
      }
      if (maxTestDuration != null) {
        throw new IllegalArgumentException("--max-test-duration goes with --type TEST");
      }
      if ((autoAction == null) != (autoAfter == null)) {
        throw new IllegalArgumentException("--auto and --after go together, e.g. --auto COMMIT"
            + " --after PT1H");
      }
      CommitPolicy policy = autoAction == null ? null : new CommitPolicy(autoAction, autoAfter);
      return withClient(options, client -> {
        FailoverWorkflow wf = client.newWorkflowStub(FailoverWorkflow.class,
            options(FailoverWorkflow.workflowId(vm),
                Summaries.failover(type, vm, recoveryPoint, null)));
        WorkflowClient.start(wf::failover, new FailoverInput(vm, type, recoveryPoint, policy,
            null));
        System.out.printf("started %s; when it is AWAITING_COMMIT: ./site-recovery commit %s "
            + "(or cancel)%s%n", FailoverWorkflow.workflowId(vm), vm, policy == null ? ""
                : "; without either, it will " + autoAction.name().toLowerCase()
                    + " by itself " + autoAfter + " after that");
        return 0;
      });
    }

    private int startTest() {
      if (autoAction != null || autoAfter != null) {
        throw new IllegalArgumentException("--auto and --after do not apply to --type TEST: a "
            + "test is never committed; it ends with ./site-recovery cleanup " + vm);
      }
      return withClient(options, client -> {
        String id = FailoverWorkflow.testWorkflowId(vm);
        FailoverWorkflow wf = client.newWorkflowStub(FailoverWorkflow.class,
            options(id, Summaries.failover(type, vm, recoveryPoint, null)));
        WorkflowClient.start(wf::failover, new FailoverInput(vm, type, recoveryPoint, null,
            maxTestDuration));
        System.out.printf("started %s: %s-test on the replica site, at %s, while replication "
            + "carries on; when it is TESTING, ./site-recovery status %s shows its NBD exports. "
            + "End it with: ./site-recovery cleanup %s --notes \"what you checked\"%n", id, vm,
            recoveryPoint, vm, vm);
        return 0;
      });
    }
  }

  @Command(name = "cleanup", description = "Signal 'cleanup' to the VM's test failover: delete "
      + "its test VM and scratch data.")
  static final class Cleanup implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Option(names = "--notes", description = "what the test showed; kept in the status")
    String notes;

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = FailoverWorkflow.testWorkflowId(vm);
        client.newUntypedWorkflowStub(id).signal("cleanup", new CleanupRequest(notes));
        System.out.printf("sent 'cleanup' to %s; it reports CLEANED_UP once nothing of %s-test "
            + "remains: ./site-recovery status %s%n", id, vm, vm);
        return 0;
      });
    }
  }

  @Command(name = "commit", description = "Signal 'commit' to the VM's failover.")
  static final class Commit implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      return signal(options, FailoverWorkflow.workflowId(vm), "commit");
    }
  }

  @Command(name = "cancel", description = "Signal 'cancel' to the VM's failover.")
  static final class Cancel implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      return signal(options, FailoverWorkflow.workflowId(vm), "cancel");
    }
  }

  @Command(name = "set-policy", description = "Switch a protected VM to another policy; it "
      + "takes effect at the next replication cycle.")
  static final class SetPolicy implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Parameters(index = "1", description = "policy name")
    String policy;

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        client.newUntypedWorkflowStub(ProtectVmWorkflow.workflowId(vm))
            .signal("setPolicy", new PolicyChange(policy));
        System.out.printf("sent setPolicy %s to %s%n", policy, ProtectVmWorkflow.workflowId(vm));
        return 0;
      });
    }
  }

  @Command(name = "signal", description = "Send pause, resume, resync or disable to a VM's ProtectVm.")
  static final class Signal implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Parameters(index = "1", description = "pause | resume | resync | disable")
    String name;

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      if (!java.util.Set.of("pause", "resume", "resync", "disable").contains(name)) {
        throw new IllegalArgumentException("unknown signal '" + name
            + "': pause, resume, resync or disable");
      }
      return signal(options, ProtectVmWorkflow.workflowId(vm), name);
    }
  }

  static int signal(TemporalOptions options, String workflowId, String signal) {
    return withClient(options, client -> {
      WorkflowStub stub = client.newUntypedWorkflowStub(workflowId);
      stub.signal(signal, new OperatorRequest("from site-recovery CLI"));
      System.out.printf("sent '%s' to %s%n", signal, workflowId);
      return 0;
    });
  }

  static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null) {
      t = t.getCause();
    }
    return t.getMessage();
  }
}
