package io.siterecovery.workflows.failback;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.FailureTypes;
import io.siterecovery.activities.PlanRunActivities;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.Inputs;
import io.siterecovery.workflows.common.LiveDetails;
import io.siterecovery.workflows.common.StepLog;
import io.siterecovery.workflows.common.MemberListener;
import io.siterecovery.workflows.common.MemberState;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.common.VmOperations;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.temporal.api.enums.v1.ParentClosePolicy;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.TemporalFailure;
import io.temporal.workflow.Async;
import io.siterecovery.workflows.Summaries;
import io.temporal.workflow.ChildWorkflowOptions;
import io.temporal.workflow.Promise;
import io.temporal.workflow.Workflow;
import java.time.Instant;
import java.util.Map;
import org.slf4j.Logger;

/**
 * A failback is the lifecycle's last leg put together from its parts: the planned failover home
 * runs as {@code failover-<vm>} (so it is the same runbook, with the same zero-loss final sync and
 * fence, and one operation per VM still holds), this workflow passing {@code commit} and
 * {@code cancel} on; then {@code reprotect-<vm>} protects the VM from home to its partner again.
 */
public class FailbackWorkflowImpl implements FailbackWorkflow {
  private static final Logger log = Workflow.getLogger(FailbackWorkflowImpl.class);

  private final AgentActivities agents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.shortStep());
  private final PlanRunActivities runs =
      Workflow.newActivityStub(PlanRunActivities.class, AgentSteps.shortStep());

  private String vm;
  private FailbackState state = FailbackState.VALIDATING;
  private String home;
  private String from;
  private FailoverStatus failover;
  private ReprotectStatus reprotect;
  private final StepLog steps = new StepLog(log, this::showDetails);
  private String error;
  private Instant startedAt;
  /** A decision received and not yet passed on to the failover: "commit" or "cancel". */
  private String pendingDecision;
  private OperatorRequest pendingRequest;
  /** What failover-<vm> last said, not yet passed on to this failback's own parent. */
  private MemberState childState;
  /** What failover-<vm> last said, for the current details. */
  private MemberState failoverHeard;

  @Override
  public FailbackStatus failback(FailbackInput input) {
    startedAt = Instant.ofEpochMilli(Workflow.currentTimeMillis());
    Inputs.requireInput(input, "{\"vm\":\"web01\",\"reprotect\":true}");
    vm = Inputs.requireName("vm", input.vm());
    steps.about(vm);
    if (input.policy() != null) {
      Inputs.requireName("policy", input.policy());
    }
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.VM_NAME.valueSet(vm));
    try {
      // Failbacks begun before this look replay without it.
      if (Workflow.getVersion("failbackRefusesBusyVm", Workflow.DEFAULT_VERSION, 1) == 1) {
        VmOperations.refuseWhileRunning(runs, vm, "Failback", Map.of(
            ReprotectWorkflow.workflowId(vm), "fail back once it has ended: the failback "
                + "travels over the protection it builds",
            FailoverWorkflow.workflowId(vm), "commit or cancel it first"));
      }
      ProtectionPlan plan = agents.describeProtection(vm);
      home = agents.homeOf(plan);
      from = plan.sourceSite();
      if (from.equals(home)) {
        throw ApplicationFailure.newNonRetryableFailure("VM " + vm + " already runs on its home "
            + "site " + home + ": nothing to fail back", FailureTypes.NOTHING_TO_FAIL_BACK);
      }
      if (!plan.targetSite().equals(home)) {
        throw ApplicationFailure.newNonRetryableFailure("VM " + vm + " replicates from " + from
            + " to " + plan.targetSite() + ", not to its home site " + home + "; Failback "
            + "returns it home only over that link", FailureTypes.NOTHING_TO_FAIL_BACK);
      }
      steps.add("failback of " + vm + " from " + from + " to its home site " + home);
      failOverHome();
      if (failover.state() != FailoverState.COMMITTED) {
        steps.add("the failover home ended " + failover.state() + ": " + vm + " stays on " + from);
        setState(FailbackState.CANCELLED);
        return status();
      }
      if (Boolean.FALSE.equals(input.reprotect())) {
        steps.add(vm + " runs on " + home + " again; not reprotected, as asked");
      } else {
        setState(FailbackState.REPROTECTING);
        ReprotectWorkflow child = Workflow.newChildWorkflowStub(ReprotectWorkflow.class,
            childOptions(ReprotectWorkflow.workflowId(vm),
                Summaries.reprotect(vm, input.policy()) + " (failback)"));
        steps.add("reverse replication: " + ReprotectWorkflow.workflowId(vm));
        reprotect = child.reprotect(new ReprotectInput(vm, false, input.policy()));
        steps.add(vm + " runs on " + home + " and is protected to " + from + " again ("
            + reprotect.mode() + ", " + reprotect.bytesSent() + " bytes sent)");
      }
    } catch (TemporalFailure e) {
      error = e.getCause() != null ? e.getCause().getMessage() : e.getMessage();
      setState(FailbackState.FAILED);
      throw e;
    }
    setState(FailbackState.COMPLETED);
    return status();
  }

  /** Runs the planned failover home, passing the operator's decision on when it comes. */
  private void failOverHome() {
    setState(FailbackState.FAILING_OVER);
    FailoverWorkflow child = Workflow.newChildWorkflowStub(FailoverWorkflow.class,
        childOptions(FailoverWorkflow.workflowId(vm),
            Summaries.failover(FailoverType.PLANNED, vm, "LATEST", home) + " (failback)"));
    Promise<FailoverStatus> done = Async.function(child::failover,
        new FailoverInput(vm, FailoverType.PLANNED, "LATEST"));
    Workflow.getWorkflowExecution(child).get();
    steps.add(FailoverWorkflow.workflowId(vm) + " started (planned: " + from + " shut down, its last"
        + " logs applied); send 'commit' or 'cancel' here or there once it awaits commit");
    while (!done.isCompleted()) {
      Workflow.await(() -> done.isCompleted() || pendingDecision != null
          || childState != null);
      if (childState != null) {
        MemberState heard = childState;
        childState = null;
        failoverHeard = heard;
        showDetails();
        MemberListener.tellParent(new MemberState(vm, Workflow.getInfo().getWorkflowId(),
            heard.state(), heard.recoveryPoint(), heard.pointTime()));
      }
      if (pendingDecision != null && !done.isCompleted()) {
        String decision = pendingDecision;
        pendingDecision = null;
        if (decision.equals("commit")) {
          child.commit(pendingRequest);
        } else {
          child.cancel(pendingRequest);
        }
        steps.add("'" + decision + "' passed on to " + FailoverWorkflow.workflowId(vm));
      }
    }
    failover = done.get();
  }

  /**
   * The children are operations in their own right, under their usual ids: if this workflow is
   * terminated (or reset) halfway, a failover whose source is shut down and fenced must still be
   * there to commit or cancel, and a reverse replication must finish, rather than be terminated
   * with it (the default). A cancel of this workflow is still passed on to them.
   */
  private static ChildWorkflowOptions childOptions(String workflowId, String summary) {
    return ChildWorkflowOptions.newBuilder()
        .setWorkflowId(workflowId)
        .setStaticSummary(summary)
        .setParentClosePolicy(ParentClosePolicy.PARENT_CLOSE_POLICY_ABANDON)
        .build();
  }


  @Override
  public void memberState(MemberState state) {
    childState = state;
  }

  @Override
  public void commit(OperatorRequest request) {
    pendingDecision = "commit";
    pendingRequest = request;
  }

  @Override
  public void cancel(OperatorRequest request) {
    pendingDecision = "cancel";
    pendingRequest = request;
  }

  private void setState(FailbackState next) {
    state = next;
    showDetails();
  }

  /** The Web UI's current details: state, where to, the failover's state as it reported it. */
  private void showDetails() {
    LiveDetails.of(state)
        .line("Home", home == null ? null : from + " → " + home)
        .line("Failover", state != FailbackState.FAILING_OVER ? null
            : FailoverWorkflow.workflowId(vm) + (failoverHeard == null ? " running"
                : " " + failoverHeard.state() + (failoverHeard.recoveryPoint() == null ? ""
                    : " at " + failoverHeard.recoveryPoint())
                    + (FailoverState.AWAITING_COMMIT.name().equals(failoverHeard.state())
                        ? ": send 'commit' or 'cancel' here or there" : "")))
        .line("Reverse replication", state != FailbackState.REPROTECTING ? null
            : ReprotectWorkflow.workflowId(vm) + " (its page shows its progress)")
        .line("Error", error)
        .line("Last", steps.last())
        .show();
  }

  @Override
  public FailbackStatus status() {
    return new FailbackStatus(vm, state, home, from, failover, reprotect, steps.list(),
        error, startedAt);
  }
}
