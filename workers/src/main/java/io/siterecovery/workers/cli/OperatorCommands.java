package io.siterecovery.workers.cli;

import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workflows.failback.FailbackStatus;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.siterecovery.workflows.failover.CommitPolicy;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.protection.PolicyChange;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workflows.common.SiteRecoveryDataConverter;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.client.WorkflowNotFoundException;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.serviceclient.WorkflowServiceStubs;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.function.Function;
import java.util.function.Supplier;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** The operator's verbs: each starts, signals or queries a workflow, as the Temporal UI would. */
final class OperatorCommands {
  private OperatorCommands() {}

  static <T> T withClient(TemporalOptions options, Function<WorkflowClient, T> action) {
    SiteRecoveryConfig config = options.resolve();
    WorkflowServiceStubs service = options.connect(config);
    try {
      // Lenient in what it reads: a CLI older than the workers still reads their status.
      return action.apply(WorkflowClient.newInstance(service, WorkflowClientOptions.newBuilder()
          .setNamespace(config.namespace())
          .setDataConverter(SiteRecoveryDataConverter.forClients()).build()));
    } finally {
      service.shutdownNow();
    }
  }

  /** The workflow's {@code status} query, on its latest run (ProtectVm continues as new). */
  static <T> T query(WorkflowClient client, String workflowId, Class<T> type) {
    return client.newUntypedWorkflowStub(workflowId).query("status", type);
  }

  /**
   * After a verb started {@code workflowId}: says so ({@code text}, or the JSON of it), or with
   * {@code --watch} draws its status until it gets where the verb is for; the result then is the
   * last status, exit 1 if it will not get there.
   */
  static int started(WorkflowClient client, OutputOptions output, boolean watch,
      String workflowId, String text, Supplier<Watch.Poll> poll) {
    if (!watch) {
      output.print(new OutputOptions.Sent(workflowId, "started", null), () -> text);
      return 0;
    }
    output.remarks().println(text);
    Watch.Poll last = Watch.until(client, workflowId, poll,
        WatchRenderer.forConsole(output.remarks()));
    if (output.json()) {
      System.out.println(OutputOptions.toJson(last.status()));
    }
    return Watch.exitCode(last);
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

    @Option(names = "--target", paramLabel = "SITE", description = "the site to replicate to, "
        + "e.g. the object-store site cloud (default: the partner of the VM's site)")
    String target;

    @Option(names = "--watch", description = "show progress and steps until it is PROTECTED")
    boolean watch;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = ProtectVmWorkflow.workflowId(vm);
        ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class,
            options(id, Summaries.protect(vm, policy)));
        WorkflowClient.start(wf::protect, new ProtectVmInput(vm, policy, target, null));
        return started(client, output, watch, id, String.format("started %s; watch it with: "
            + "./site-recovery status %s", id, vm), () -> {
              ProtectionStatus s = query(client, id, ProtectionStatus.class);
              return new Watch.Poll(s, Watch.protect(s));
            });
      });
    }
  }

  @Command(name = "status", description = "Without a VM: a table of every VM on every site "
      + "(state, health, RPO, latest point, next cycle). With one: its protection and failovers.")
  static final class Status implements Callable<Integer> {
    @Parameters(index = "0", arity = "0..1", description = "VM name (default: every VM)")
    String vm;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    /** The JSON of one VM: each workflow's status, null where it never ran. */
    record VmReport(String vm, ProtectionStatus protection, FailoverStatus testFailover,
        FailoverStatus failover, ReprotectStatus reprotect, FailbackStatus failback) {}

    @Override
    public Integer call() {
      return vm == null ? table() : one();
    }

    private int one() {
      return withClient(options, client -> {
        String noProtection = null;
        ProtectionStatus protection = null;
        try {
          protection = query(client, ProtectVmWorkflow.workflowId(vm), ProtectionStatus.class);
        } catch (RuntimeException e) {
          noProtection = rootMessage(e);
        }
        VmReport r = new VmReport(vm, protection,
            ifRan(client, FailoverWorkflow.testWorkflowId(vm), FailoverStatus.class),
            ifRan(client, FailoverWorkflow.workflowId(vm), FailoverStatus.class),
            ifRan(client, ReprotectWorkflow.workflowId(vm), ReprotectStatus.class),
            ifRan(client, FailbackWorkflow.workflowId(vm), FailbackStatus.class));
        String none = noProtection;
        output.print(r, () -> {
          List<String> parts = new ArrayList<>();
          parts.add(r.protection() != null ? StatusText.of(r.protection())
              : "protection: none (" + none + ")");
          Stream.of(r.testFailover(), r.failover()).filter(Objects::nonNull)
              .forEach(f -> parts.add(StatusText.of(f)));
          if (r.reprotect() != null) {
            parts.add(StatusText.of(r.reprotect()));
          }
          if (r.failback() != null) {
            parts.add(StatusText.of(r.failback()));
          }
          return String.join("\n", parts);
        });
        boolean any = protection != null || r.testFailover() != null || r.failover() != null
            || r.reprotect() != null || r.failback() != null;
        return any ? 0 : 1;
      });
    }

    /** A workflow's status, or null if it never ran for this VM. */
    private static <T> T ifRan(WorkflowClient client, String workflowId, Class<T> type) {
      try {
        return query(client, workflowId, type);
      } catch (RuntimeException e) {
        return null;
      }
    }

    private int table() {
      SiteRecoveryConfig config = options.resolve();
      Map<String, List<VmRecord>> inventories = new LinkedHashMap<>();
      Map<String, String> unreachable = new LinkedHashMap<>();
      List<String> sites = List.copyOf(config.sites().keySet());
      List<Inventory> listed = eachInParallel(sites, site -> {
        try {
          return new Inventory(VmCommand.agent(config, site).listVms(), null);
        } catch (RuntimeException e) {
          return new Inventory(null, rootMessage(e));
        }
      });
      for (int i = 0; i < sites.size(); i++) {
        if (listed.get(i).error() != null) {
          unreachable.put(sites.get(i), listed.get(i).error());
        } else {
          inventories.put(sites.get(i), listed.get(i).vms());
        }
      }
      Map<String, String> running = StatusTable.runningSites(inventories);
      List<StatusTable.Row> rows = withClient(options, client ->
          eachInParallel(List.copyOf(running.keySet()), name -> {
            try {
              return StatusTable.Row.of(query(client, ProtectVmWorkflow.workflowId(name),
                  ProtectionStatus.class));
            } catch (WorkflowNotFoundException e) {
              return StatusTable.Row.unprotected(name, running.get(name));
            } catch (RuntimeException e) {
              return StatusTable.Row.unreadable(name, running.get(name), rootMessage(e));
            }
          }));
      StatusTable.Report report = new StatusTable.Report(rows, unreachable);
      output.print(report, () -> StatusTable.text(report, Instant.now()));
      boolean complete = unreachable.isEmpty() && rows.stream().allMatch(r -> r.error() == null);
      if (!complete && output.json()) {
        System.err.println("error: not every VM could be read; see unreachableSites and error");
      }
      return complete ? 0 : 1;
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

    @Option(names = "--watch", description = "show the steps until it awaits commit (TEST: "
        + "until it is TESTING), or its end")
    boolean watch;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

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
        String id = FailoverWorkflow.workflowId(vm);
        FailoverWorkflow wf = client.newWorkflowStub(FailoverWorkflow.class,
            options(id, Summaries.failover(type, vm, recoveryPoint, null)));
        WorkflowClient.start(wf::failover, new FailoverInput(vm, type, recoveryPoint, policy,
            null));
        return started(client, output, watch, id, String.format("started %s; when it is "
            + "AWAITING_COMMIT: ./site-recovery commit %s (or cancel)%s", id, vm,
            policy == null ? "" : "; without either, it will "
                + autoAction.name().toLowerCase() + " by itself " + autoAfter + " after that"),
            () -> poll(client, id));
      });
    }

    static Watch.Poll poll(WorkflowClient client, String id) {
      FailoverStatus f = query(client, id, FailoverStatus.class);
      return new Watch.Poll(f, Watch.failover(f, Instant.now()));
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
        return started(client, output, watch, id, String.format("started %s: %s-test on the "
            + "replica site, at %s, while replication carries on; when it is TESTING, "
            + "./site-recovery status %s shows its NBD exports. End it with: ./site-recovery "
            + "cleanup %s --notes \"what you checked\"", id, vm, recoveryPoint, vm, vm),
            () -> poll(client, id));
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

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = FailoverWorkflow.testWorkflowId(vm);
        client.newUntypedWorkflowStub(id).signal("cleanup", new CleanupRequest(notes));
        output.print(new OutputOptions.Sent(id, "signal cleanup", notes), () -> String.format(
            "sent 'cleanup' to %s; it reports CLEANED_UP once nothing of %s-test remains: "
                + "./site-recovery status %s", id, vm, vm));
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

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return signal(options, output, FailoverWorkflow.workflowId(vm), "commit");
    }
  }

  @Command(name = "cancel", description = "Signal 'cancel' to the VM's failover.")
  static final class Cancel implements Callable<Integer> {
    @Parameters(index = "0", description = "VM name")
    String vm;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return signal(options, output, FailoverWorkflow.workflowId(vm), "cancel");
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

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = ProtectVmWorkflow.workflowId(vm);
        client.newUntypedWorkflowStub(id).signal("setPolicy", new PolicyChange(policy));
        output.print(new OutputOptions.Sent(id, "signal setPolicy", policy),
            () -> String.format("sent setPolicy %s to %s", policy, id));
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

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      if (!java.util.Set.of("pause", "resume", "resync", "disable").contains(name)) {
        throw new IllegalArgumentException("unknown signal '" + name
            + "': pause, resume, resync or disable");
      }
      return signal(options, output, ProtectVmWorkflow.workflowId(vm), name);
    }
  }

  static int signal(TemporalOptions options, OutputOptions output, String workflowId,
      String signal) {
    return withClient(options, client -> {
      WorkflowStub stub = client.newUntypedWorkflowStub(workflowId);
      stub.signal(signal, new OperatorRequest("from site-recovery CLI"));
      output.print(new OutputOptions.Sent(workflowId, "signal " + signal, null),
          () -> String.format("sent '%s' to %s", signal, workflowId));
      return 0;
    });
  }

  /** A site's VMs, or why it did not answer. */
  private record Inventory(List<VmRecord> vms, String error) {}

  /** How many sites or workflows {@code status} reads at once. */
  private static final int STATUS_READERS = 8;

  /**
   * {@code work} for each key, {@link #STATUS_READERS} at a time, the results in the keys' order:
   * a table of many VMs waits about for its slowest query, not for the sum of them all.
   */
  static <K, V> List<V> eachInParallel(List<K> keys, Function<K, V> work) {
    if (keys.isEmpty()) {
      return List.of();
    }
    ExecutorService pool = Executors.newFixedThreadPool(Math.min(STATUS_READERS, keys.size()));
    try {
      List<Future<V>> futures = keys.stream().map(k -> pool.submit(() -> work.apply(k))).toList();
      List<V> results = new ArrayList<>();
      for (Future<V> f : futures) {
        results.add(f.get());
      }
      return results;
    } catch (ExecutionException e) {
      throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while reading statuses", e);
    } finally {
      pool.shutdownNow();
    }
  }

  static String rootMessage(Throwable e) {
    Throwable t = e;
    while (t.getCause() != null) {
      t = t.getCause();
    }
    return t.getMessage();
  }
}
