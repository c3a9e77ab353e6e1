package io.siterecovery.workflows.failover;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.FailureTypes;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.Inputs;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.protection.FailoverNotice;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.RecoveryPoint;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.TemporalFailure;
import io.temporal.workflow.CancellationScope;
import io.temporal.workflow.SignalExternalWorkflowException;
import io.temporal.workflow.Workflow;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.slf4j.Logger;

public class FailoverWorkflowImpl implements FailoverWorkflow {
  private static final Logger log = Workflow.getLogger(FailoverWorkflowImpl.class);
  /** Planned failover always lands on the final synchronised point, which is both of these. */
  private static final Set<String> PLANNED_POINTS = Set.of("LATEST", "LATEST_PROCESSED");

  private enum Decision { COMMIT, CANCEL }

  private final AgentActivities agents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.shortStep());

  private String vm;
  private FailoverType type;
  private FailoverState state = FailoverState.VALIDATING;
  private ProtectionPlan plan;
  private RecoveryPoint point;
  private final List<String> steps = new ArrayList<>();
  private String error;
  private Instant startedAt;
  private Decision decision;

  @Override
  public FailoverStatus failover(FailoverInput input) {
    startedAt = Instant.ofEpochMilli(Workflow.currentTimeMillis());
    Inputs.requireInput(input, "{\"vm\":\"web01\",\"type\":\"PLANNED\",\"recoveryPoint\":\"LATEST\"}");
    vm = Inputs.requireName("vm", input.vm());
    type = input.type();
    if (type == null) {
      throw Inputs.invalid("field 'type' is required: PLANNED, UNPLANNED or TEST");
    }
    if (type != FailoverType.PLANNED) {
      throw Inputs.invalid("failover type " + type + " is not available yet; use PLANNED");
    }
    String requestedPoint = input.recoveryPoint() == null ? "LATEST" : input.recoveryPoint();
    if (!PLANNED_POINTS.contains(requestedPoint)) {
      throw Inputs.invalid("field 'recoveryPoint': a planned failover uses the final synchronised "
          + "point, so only LATEST or LATEST_PROCESSED are accepted, not '" + requestedPoint + "'");
    }
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.VM_NAME.valueSet(vm));
    plan = agents.describeProtection(vm);
    step("VM " + vm + " is protected from " + plan.sourceSite() + " to " + plan.targetSite());
    ProtectVmWorkflow protection = Workflow.newExternalWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId(vm));
    try {
      protection.failover(new FailoverNotice(Workflow.getInfo().getWorkflowId(),
          FailoverNotice.Stage.STARTED));
    } catch (SignalExternalWorkflowException | ApplicationFailure e) {
      // The SDK reports a missing target as either, depending on when the server answers.
      throw ApplicationFailure.newNonRetryableFailure("no running ProtectVm workflow "
          + ProtectVmWorkflow.workflowId(vm) + " for VM " + vm, FailureTypes.NOT_PROTECTED);
    }
    step("replication cycles of " + ProtectVmWorkflow.workflowId(vm) + " stopped");

    boolean replicaStarted = false;
    try {
      setState(FailoverState.SHUTTING_DOWN_SOURCE);
      agents.powerOff(plan.sourceSite(), vm);
      step("source VM shut down on " + plan.sourceSite() + " (flushed, clients dropped)");
      setState(FailoverState.SYNCHRONIZING);
      ReplicationCycle last = agents.replicateDelta(plan);
      if (last.appliedGeneration() != last.lastSealedGeneration()) {
        throw ApplicationFailure.newNonRetryableFailure("replica applied generation "
            + last.appliedGeneration() + " but the source sealed " + last.lastSealedGeneration(),
            FailureTypes.REPLICA_BEHIND);
      }
      point = RecoveryPoint.of(last.appliedGeneration(), last.pointTime());
      step("final logs shipped and applied: replica at " + point.id() + " = source's last write ("
          + last.logsShipped() + " logs, " + last.bytesShipped() + " bytes)");
      setState(FailoverState.STARTING_REPLICA);
      agents.powerOn(plan.targetSite(), vm);
      replicaStarted = true;
      step("replica VM started on " + plan.targetSite() + "; its disks are exported");
    } catch (TemporalFailure e) {
      error = e.getCause() != null ? e.getCause().getMessage() : e.getMessage();
      boolean started = replicaStarted;
      // Put the source back in service even if this workflow is being cancelled.
      Workflow.newDetachedCancellationScope(() -> rollBack(protection, started)).run();
      setState(FailoverState.FAILED);
      throw e;
    }

    setState(FailoverState.AWAITING_COMMIT);
    step("awaiting 'commit' or 'cancel'");
    Workflow.await(() -> decision != null);
    if (decision == Decision.COMMIT) {
      setState(FailoverState.COMMITTING);
      agents.commitFailover(plan);
      protection.failover(new FailoverNotice(Workflow.getInfo().getWorkflowId(),
          FailoverNotice.Stage.COMMITTED));
      step("committed: " + vm + " now runs on " + plan.targetSite());
      setState(FailoverState.COMMITTED);
    } else {
      setState(FailoverState.CANCELLING);
      rollBack(protection, true);
      step("cancelled: " + vm + " runs on " + plan.sourceSite() + " again, protection resumed");
      setState(FailoverState.CANCELLED);
    }
    return status();
  }

  private void rollBack(ProtectVmWorkflow protection, boolean replicaStarted) {
    if (replicaStarted) {
      agents.powerOff(plan.targetSite(), vm);
    }
    agents.powerOn(plan.sourceSite(), vm);
    protection.failover(new FailoverNotice(Workflow.getInfo().getWorkflowId(),
        FailoverNotice.Stage.CANCELLED));
  }

  private void setState(FailoverState next) {
    state = next;
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.PROTECTION_STATE.valueSet(
        "FAILOVER_" + next.name()));
  }

  private void step(String what) {
    steps.add(Instant.ofEpochMilli(Workflow.currentTimeMillis()) + " " + what);
    log.info("{}: {}", vm, what);
  }

  @Override
  public void commit(OperatorRequest request) {
    if (decision == null) {
      decision = Decision.COMMIT;
    }
  }

  @Override
  public void cancel(OperatorRequest request) {
    if (decision == null) {
      decision = Decision.CANCEL;
    }
  }

  @Override
  public FailoverStatus status() {
    return new FailoverStatus(vm, type, state, plan == null ? null : plan.sourceSite(),
        plan == null ? null : plan.targetSite(), point, List.copyOf(steps), error, startedAt);
  }
}
