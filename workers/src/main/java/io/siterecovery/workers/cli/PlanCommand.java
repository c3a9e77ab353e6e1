package io.siterecovery.workers.cli;

import static io.siterecovery.workers.cli.OperatorCommands.options;
import static io.siterecovery.workers.cli.OperatorCommands.query;
import static io.siterecovery.workers.cli.OperatorCommands.started;
import static io.siterecovery.workers.cli.OperatorCommands.withClient;

import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.siterecovery.workflows.failover.CommitPolicy;
import io.siterecovery.workflows.plan.Approval;
import io.siterecovery.workflows.plan.PlanOperation;
import io.siterecovery.workflows.plan.PlanStatus;
import io.siterecovery.workflows.plan.RecoveryPlanInput;
import io.siterecovery.workflows.plan.RecoveryPlanWorkflow;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowStub;
import java.time.Duration;
import java.time.Instant;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/** {@code site-recovery plan ...}: run and answer recovery plans, print their reports. */
@Command(name = "plan", description = "Run a recovery plan (workflow plan-<plan>) and answer it.",
    subcommands = {PlanCommand.Start.class, PlanCommand.Validate.class, PlanCommand.Status.class,
        PlanCommand.Approve.class, PlanCommand.Decide.class, PlanCommand.Report.class})
final class PlanCommand {
  private PlanCommand() {}

  @Command(name = "start", description = "Start an operation over every VM of a plan.")
  static final class Start implements Callable<Integer> {
    @Parameters(index = "0", description = "plan name")
    String plan;

    @Option(names = "--operation", required = true, description = "TEST_FAILOVER, "
        + "PLANNED_FAILOVER, UNPLANNED_FAILOVER, REPROTECT or FAILBACK (VALIDATE: plan validate)")
    PlanOperation operation;

    @Option(names = "--point", description = "LATEST, LATEST_APP_CONSISTENT or LATEST_COMMON")
    String point;

    @Option(names = "--auto", description = "COMMIT or CANCEL by itself after --after")
    CommitPolicy.Action auto;

    @Option(names = "--after", description = "ISO-8601 duration for --auto, e.g. PT1H")
    Duration after;

    @Option(names = "--watch", description = "show progress and steps until the plan ends or "
        + "waits for an approval, a commit or a cleanup")
    boolean watch;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = RecoveryPlanWorkflow.workflowId(plan);
        RecoveryPlanWorkflow wf = client.newWorkflowStub(RecoveryPlanWorkflow.class,
            options(id, Summaries.plan(plan, operation)));
        WorkflowClient.start(wf::run, new RecoveryPlanInput(plan, operation, point,
            auto == null ? null : new CommitPolicy(auto, after)));
        return started(client, output, watch, id, String.format("started %s (%s); watch it "
            + "with: ./site-recovery plan status %s", id, operation, plan), () -> {
              PlanStatus s = query(client, id, PlanStatus.class);
              return new Watch.Poll(s, Watch.plan(s, Instant.now()));
            });
      });
    }
  }

  @Command(name = "validate", description = "Dry run: report every problem of a plan at once, "
      + "changing nothing.")
  static final class Validate implements Callable<Integer> {
    @Parameters(index = "0", description = "plan name")
    String plan;

    @Option(names = "--auto", description = "the commit policy a failover would run with: "
        + "COMMIT or CANCEL after --after (checked against the plan's manual steps)")
    CommitPolicy.Action auto;

    @Option(names = "--after", description = "ISO-8601 duration for --auto, e.g. PT1H")
    Duration after;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = RecoveryPlanWorkflow.workflowId(plan);
        RecoveryPlanWorkflow wf = client.newWorkflowStub(RecoveryPlanWorkflow.class,
            options(id, Summaries.plan(plan, PlanOperation.VALIDATE)));
        PlanStatus s = wf.run(new RecoveryPlanInput(plan, PlanOperation.VALIDATE, null,
            auto == null ? null : new CommitPolicy(auto, after)));
        output.print(s, () -> PlanReport.validation(s));
        return s.failures().isEmpty() ? 0 : 1;
      });
    }
  }

  @Command(name = "status", description = "Where a plan's run is: groups, VMs, actions.")
  static final class Status implements Callable<Integer> {
    @Parameters(index = "0", description = "plan name")
    String plan;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        PlanStatus s = PlanReport.asOf(query(client, RecoveryPlanWorkflow.workflowId(plan),
            PlanStatus.class), Instant.now());
        output.print(s, () -> PlanReport.markdown(s));
        return 0;
      });
    }
  }

  @Command(name = "approve", description = "Signal 'approve' for the manual step a plan waits on.")
  static final class Approve implements Callable<Integer> {
    @Parameters(index = "0", description = "plan name")
    String plan;

    @Parameters(index = "1", description = "the step, as status names it")
    String step;

    @Option(names = "--by", description = "who approves (kept in the report)")
    String by = System.getProperty("user.name");

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        String id = RecoveryPlanWorkflow.workflowId(plan);
        client.newUntypedWorkflowStub(id).signal("approve", new Approval(step, by));
        output.print(new OutputOptions.Sent(id, "signal approve", step + " by " + by),
            () -> String.format("sent 'approve' of \"%s\" by %s to %s", step, by, id));
        return 0;
      });
    }
  }

  @Command(name = "signal", description = "Send commit, cancel or cleanup to a plan: it passes "
      + "them on to every VM.")
  static final class Decide implements Callable<Integer> {
    @Parameters(index = "0", description = "plan name")
    String plan;

    @Parameters(index = "1", description = "commit, cancel or cleanup")
    String signal;

    @Option(names = "--notes", description = "cleanup notes")
    String notes;

    @Mixin
    TemporalOptions options;

    @Mixin
    OutputOptions output;

    @Override
    public Integer call() {
      if (!java.util.List.of("commit", "cancel", "cleanup").contains(signal)) {
        throw new IllegalArgumentException("signal must be commit, cancel or cleanup");
      }
      return withClient(options, client -> {
        WorkflowStub stub = client.newUntypedWorkflowStub(RecoveryPlanWorkflow.workflowId(plan));
        stub.signal(signal, signal.equals("cleanup") ? new CleanupRequest(notes)
            : new OperatorRequest("from site-recovery CLI"));
        output.print(new OutputOptions.Sent(RecoveryPlanWorkflow.workflowId(plan),
            "signal " + signal, notes), () -> String.format("sent '%s' to plan-%s", signal, plan));
        return 0;
      });
    }
  }

  @Command(name = "report", description = "Write a plan run's report: the evidence of a drill.")
  static final class Report implements Callable<Integer> {
    @Parameters(index = "0", description = "plan name")
    String plan;

    @Option(names = "--run", description = "run id (default: the latest run)")
    String runId;

    @Option(names = "--format", defaultValue = "md", description = "md, json or html")
    String format;

    @Mixin
    TemporalOptions options;

    @Override
    public Integer call() {
      return withClient(options, client -> {
        WorkflowStub stub = client.newUntypedWorkflowStub(RecoveryPlanWorkflow.workflowId(plan),
            java.util.Optional.ofNullable(runId), java.util.Optional.empty());
        PlanStatus s;
        try {
          s = stub.query("status", PlanStatus.class);
        } catch (RuntimeException e) {
          s = stub.getResult(PlanStatus.class);
        }
        if (format.equals("json")) {
          try {
            System.out.println(io.siterecovery.agent.Json.MAPPER
                .writerWithDefaultPrettyPrinter().writeValueAsString(s));
          } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalStateException(e);
          }
        } else if (format.equals("md")) {
          System.out.println(PlanReport.markdown(s));
        } else if (format.equals("html")) {
          System.out.println(PlanReport.html(s));
        } else {
          throw new IllegalArgumentException("--format must be md, json or html");
        }
        return 0;
      });
    }
  }
}
