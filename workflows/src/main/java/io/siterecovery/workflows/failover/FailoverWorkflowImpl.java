package io.siterecovery.workflows.failover;

import io.siterecovery.workflows.protection.Progress;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.DeltaRequest;
import io.siterecovery.activities.AgentActivityRecords.PromoteOutcome;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.TestCleanup;
import io.siterecovery.activities.AgentActivityRecords.TestVm;
import io.siterecovery.activities.AgentActivityRecords.TransferSettings;
import io.siterecovery.activities.FailureTypes;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.Inputs;
import io.siterecovery.workflows.common.StepLog;
import io.siterecovery.workflows.common.MemberListener;
import io.siterecovery.workflows.common.MemberState;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.protection.FailoverNotice;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.RecoveryPoint;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.TemporalFailure;
import io.temporal.workflow.SignalExternalWorkflowException;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;

/**
 * Planned: shut the source down, ship and apply its last logs, fence it, then start the replica,
 * so no data is lost. Unplanned: the source is lost; fence it if it still answers (or owe it the
 * fence), and start the replica at the chosen point, after one attempt to ship what the source
 * still has when LATEST is asked for. Test: see {@link TestFailover}.
 *
 * <p>The replica VM runs on layers over the replica's disks, which stay at the generation they
 * had applied until a commit: a cancel needs no resync, and {@code changeRecoveryPoint} can move
 * the VM to any retained point, older or newer. A commit makes the replica the primary, its
 * writes tracked from the start for reverse replication (Reprotect). Runs started before this
 * ({@code replicaOnLayers} version) roll the replica back and power it on as they did.
 */
public class FailoverWorkflowImpl implements FailoverWorkflow {
  private static final Logger log = Workflow.getLogger(FailoverWorkflowImpl.class);

  private enum Decision { COMMIT, CANCEL }

  private final AgentActivities agents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.shortStep());
  private final AgentActivities oneAttempt =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.deltaCycle());
  private final AgentActivities finalSync =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.finalSync());
  private final TestFailover test = new TestFailover(agents);

  private String vm;
  private FailoverType type;
  private FailoverState state = FailoverState.VALIDATING;
  private ProtectionPlan plan;
  private RecoveryPoint point;
  private final StepLog steps = new StepLog(log, this::showDetails);
  private String error;
  /** A commit's download, reported by its activity (copyProgress). */
  private Progress progress;
  private Instant startedAt;
  private Decision decision;
  private CommitPolicy commitPolicy;
  private Instant decidesItselfAt;

  private boolean sourceStopped;
  private boolean replicaStarted;
  private boolean onLayers;
  /** Idempotency key of this run's replica starts; one more suffix per start. */
  private String runKey;
  private int starts;
  private final List<RecoveryPoint> pointsTried = new ArrayList<>();
  private String requestedPoint;
  private SourceFence fence;
  /** Rolled back or started: either way it no longer continues the source's log sequence. */
  private boolean replicaChanged;

  @Override
  public FailoverStatus failover(FailoverInput input) {
    startedAt = Instant.ofEpochMilli(Workflow.currentTimeMillis());
    Inputs.requireInput(input, "{\"vm\":\"web01\",\"type\":\"PLANNED\",\"recoveryPoint\":\"LATEST\"}");
    vm = Inputs.requireName("vm", input.vm());
    steps.about(vm);
    type = input.type();
    if (type == null) {
      throw Inputs.invalid("field 'type' is required: PLANNED, UNPLANNED or TEST");
    }
    if (type == FailoverType.TEST) {
      return test.run(vm, input, startedAt);
    }
    if (input.maxTestDuration() != null) {
      throw Inputs.invalid("field 'maxTestDuration' applies to TEST failovers only");
    }
    String choice = RecoveryPointChoice.validate(input.recoveryPoint());
    commitPolicy = CommitPolicy.validate(input.commitPolicy());
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.VM_NAME.valueSet(vm));
    plan = agents.describeProtection(vm);
    steps.add(type + " failover of " + vm + " from " + plan.sourceSite() + " to "
        + plan.targetSite() + " at recovery point " + choice);
    ProtectVmWorkflow protection = Workflow.newExternalWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId(vm));
    try {
      protection.failover(notice(FailoverNotice.Stage.STARTED));
    } catch (SignalExternalWorkflowException | ApplicationFailure e) {
      // The SDK reports a missing target as either, depending on when the server answers.
      throw ApplicationFailure.newNonRetryableFailure("no running ProtectVm workflow "
          + ProtectVmWorkflow.workflowId(vm) + " for VM " + vm, FailureTypes.NOT_PROTECTED);
    }
    steps.add("replication cycles of " + ProtectVmWorkflow.workflowId(vm) + " stopped");

    try {
      // Runs started before tests existed replay without the look for one.
      if (Workflow.getVersion("cleanUpTestFirst", Workflow.DEFAULT_VERSION, 1) == 1) {
        cleanUpTestFailover();
      }
      onLayers = Workflow.getVersion("replicaOnLayers", Workflow.DEFAULT_VERSION, 1) == 1;
      if (type == FailoverType.PLANNED) {
        requireNoResyncNeeded();
        shutDownAndSynchronise();
      } else if (choice.equals("LATEST")) {
        tryFinalShipFromLostSource();
      }
      // The point is resolved before the source is fenced: a point the replica does not retain
      // fails the failover without stopping a source that may still be running.
      ReplicaPoint replica = agents.replicaPoint(plan.targetSite(), vm);
      long generation = RecoveryPointChoice.resolve(choice, replica);
      // A test that passed its own check just before this failover started may have made its
      // VM since the first look; it would stand where the replica VM starts. Runs begun before
      // this second look replay without it.
      if (Workflow.getVersion("cleanUpTestBeforeStart", Workflow.DEFAULT_VERSION, 1) == 1) {
        cleanUpTestFailover();
      }
      if (onLayers) {
        fence = new SourceFence(plan.sourceSite(), vm, steps::add);
        if (type == FailoverType.PLANNED) {
          fence.fence();
        } else {
          fence.fenceOrOwe();
        }
      }
      startReplicaAt(generation, replica);
      setState(FailoverState.AWAITING_COMMIT);
      MemberListener.tellParent(new MemberState(vm, Workflow.getInfo().getWorkflowId(),
          FailoverState.AWAITING_COMMIT.name(), point.id(), point.time()));
      // A changeRecoveryPoint that cannot start the replica again rolls back like a failed start.
      awaitDecision();
    } catch (TemporalFailure e) {
      error = e.getCause() != null ? e.getCause().getMessage() : e.getMessage();
      // Put the source back in service even if this workflow is being cancelled.
      Workflow.newDetachedCancellationScope(() -> rollBack(protection)).run();
      setState(FailoverState.FAILED);
      throw e;
    }

    if (decision == Decision.COMMIT) {
      setState(FailoverState.COMMITTING);
      if (onLayers) {
        commitOnLayers(protection);
      } else {
        agents.commitFailover(plan);
        tellProtection(protection, FailoverNotice.Stage.COMMITTED);
        steps.add("committed: " + vm + " now runs on " + plan.targetSite()
            + (type == FailoverType.UNPLANNED ? "; it is not protected until reprotected" : ""));
        setState(FailoverState.COMMITTED);
      }
    } else {
      setState(FailoverState.CANCELLING);
      rollBack(protection);
      steps.add("cancelled: " + vm + (sourceStopped() ? " runs on " + plan.sourceSite() + " again; "
          : " was not stopped on " + plan.sourceSite() + "; ")
          + (onLayers ? "protection resumes without a resync: the replica's disks were not "
              + "written" : "protection resumes with a resync, as the replica ran"));
      setState(FailoverState.CANCELLED);
    }
    return status();
  }

  private void commitOnLayers(ProtectVmWorkflow protection) {
    // A replica recovered from a bucket is committed once its disks are local, which can take
    // hours: the step with the final sync's timeout and heartbeat. Runs from before keep the
    // short step.
    AgentActivities committer = Workflow.getVersion("commitWaitsForLocalDisks",
        Workflow.DEFAULT_VERSION, 1) == 1 ? finalSync : agents;
    PromoteOutcome promoted = committer.promoteReplica(plan);
    tellProtection(protection, FailoverNotice.Stage.COMMITTED);
    steps.add("committed: " + vm + " is the primary on " + plan.targetSite() + ", its writes tracked;"
        + " " + promoted.changedBytes() + " bytes changed since " + point.id() + " wait for "
        + "Reprotect (reverse replication to " + plan.sourceSite() + ")");
    setState(FailoverState.COMMITTED);
    fence.awaitOwed();
  }

  /** Shut down by this failover, or off because it was fenced. */
  private boolean sourceStopped() {
    return sourceStopped || (fence != null && fence.fenced());
  }

  /**
   * Waits for {@code commit} or {@code cancel}, moving the replica VM to another point whenever
   * {@code changeRecoveryPoint} asks; with a commit policy, only until it is due (counted from
   * the first wait, whatever points were tried meanwhile), then decides as the policy says.
   */
  private void awaitDecision() {
    String verb = commitPolicy == null ? null
        : commitPolicy.action() == CommitPolicy.Action.COMMIT ? "commit" : "cancel";
    if (commitPolicy == null) {
      steps.add("awaiting 'commit' or 'cancel'");
    } else {
      decidesItselfAt = Instant.ofEpochMilli(Workflow.currentTimeMillis())
          .plus(commitPolicy.after());
      steps.add("awaiting 'commit' or 'cancel'; without either, the commit policy will " + verb
          + " at " + decidesItselfAt);
    }
    while (decision == null) {
      if (commitPolicy == null) {
        Workflow.await(() -> decision != null || requestedPoint != null);
      } else {
        Duration left = Duration.between(Instant.ofEpochMilli(Workflow.currentTimeMillis()),
            decidesItselfAt);
        if (left.isNegative() || left.isZero()
            || !Workflow.await(left, () -> decision != null || requestedPoint != null)) {
          decision = commitPolicy.action() == CommitPolicy.Action.COMMIT ? Decision.COMMIT
              : Decision.CANCEL;
          steps.add("no 'commit' or 'cancel' within " + commitPolicy.after() + ": the commit policy "
              + verb + "s the failover");
        }
      }
      if (decision == null && requestedPoint != null) {
        changeRecoveryPoint();
      }
    }
  }

  /** Moves the running replica VM to the requested point; a bad request is refused in a step. */
  private void changeRecoveryPoint() {
    String requested = requestedPoint;
    requestedPoint = null;
    if (!onLayers) {
      steps.add("changeRecoveryPoint to " + requested + " refused: this failover started before the"
          + " replica could run at another point without a resync");
      return;
    }
    long generation;
    ReplicaPoint replica;
    try {
      String choice = RecoveryPointChoice.validate(requested);
      replica = agents.replicaPoint(plan.targetSite(), vm);
      generation = RecoveryPointChoice.resolve(choice, replica);
    } catch (ApplicationFailure refused) {
      steps.add("changeRecoveryPoint to " + requested + " refused: " + refused.getOriginalMessage());
      return;
    }
    if (generation == point.generation()) {
      steps.add("changeRecoveryPoint: the replica VM already runs at " + point.id());
      return;
    }
    setState(FailoverState.CHANGING_RECOVERY_POINT);
    RecoveryPoint previous = point;
    agents.stopReplica(plan.targetSite(), vm);
    steps.add("replica VM stopped at " + point.id() + "; what it wrote there is dropped");
    try {
      startOnLayers(generation, replica);
    } catch (ActivityFailure f) {
      // The VM must run somewhere while the operator decides: back where it was.
      steps.add("changeRecoveryPoint to " + requested + " failed: the replica VM could not start at "
          + RecoveryPoint.idOf(generation) + " (" + f.getCause().getMessage() + "); starting it "
          + "again at " + previous.id());
      startOnLayers(previous.generation(), replica);
    }
    setState(FailoverState.AWAITING_COMMIT);
  }

  /**
   * A forgotten drill must not block a real failover: its test VM goes first, and its workflow
   * is told why, so that it ends CLEANED_UP saying so.
   */
  private void cleanUpTestFailover() {
    TestVm live = agents.findTestVm(plan.targetSite(), vm);
    if (live == null) {
      return;
    }
    TestCleanup cleanup = agents.deleteTestVm(plan.targetSite(), vm);
    if (!cleanup.remaining().isEmpty()) {
      throw ApplicationFailure.newNonRetryableFailure("the test VM " + live.testVm() + " on "
          + plan.targetSite() + " could not be removed before the " + type + " failover; still "
          + "there: " + cleanup.remaining(), TestFailover.CLEANUP_INCOMPLETE);
    }
    String testId = FailoverWorkflow.testWorkflowId(vm);
    String told;
    try {
      Workflow.newExternalWorkflowStub(FailoverWorkflow.class, testId).cleanup(new CleanupRequest(
          "cleaned up by " + Workflow.getInfo().getWorkflowId() + " before a " + type
              + " failover"));
      told = testId + " was told to end";
    } catch (SignalExternalWorkflowException | ApplicationFailure e) {
      told = "no " + testId + " was running to tell";
    }
    steps.add("a test failover was running: its test VM " + live.testVm() + " ("
        + RecoveryPoint.idOf(live.generation()) + ", created " + live.createdAt()
        + ") was deleted first; " + told);
  }

  /** A replica known to differ from the source cannot become it without loss: resync first. */
  private void requireNoResyncNeeded() {
    String reason = agents.sourceHealth(plan).resyncRequiredReason();
    if (reason != null) {
      throw ApplicationFailure.newNonRetryableFailure("the replica of " + vm + " needs a resync "
          + "before a planned failover (" + reason + "); send 'resync' to "
          + ProtectVmWorkflow.workflowId(vm) + ", or fail over UNPLANNED to a recovery point",
          FailureTypes.REPLICA_BEHIND);
    }
  }

  private void shutDownAndSynchronise() {
    setState(FailoverState.SHUTTING_DOWN_SOURCE);
    agents.powerOff(plan.sourceSite(), vm);
    sourceStopped = true;
    steps.add("source VM shut down on " + plan.sourceSite() + " (flushed, clients dropped)");
    setState(FailoverState.SYNCHRONIZING);
    // Everything the source still holds ships now: no 2-minute limit (runs recorded before keep
    // the short step's options).
    AgentActivities shipper = Workflow.getVersion("finalSyncTimeout", Workflow.DEFAULT_VERSION, 1)
        == 1 ? finalSync : agents;
    ReplicationCycle last = shipper.replicateDelta(finalDelta());
    if (last.appliedGeneration() != last.lastSealedGeneration()) {
      throw ApplicationFailure.newNonRetryableFailure("replica applied generation "
          + last.appliedGeneration() + " but the source sealed " + last.lastSealedGeneration(),
          FailureTypes.REPLICA_BEHIND);
    }
    steps.add("final logs shipped and applied: replica at " + RecoveryPoint.idOf(
        last.appliedGeneration()) + " = source's last write (" + last.logsShipped() + " logs, "
        + last.bytesShipped() + " bytes)");
  }

  /** One attempt only: the source is presumed lost, and waiting for it is what we fail over from. */
  private void tryFinalShipFromLostSource() {
    setState(FailoverState.SYNCHRONIZING);
    try {
      ReplicationCycle last = oneAttempt.replicateDelta(finalDelta());
      steps.add("the source still answered: its last logs were applied (" + last.logsShipped()
          + " logs)");
    } catch (ActivityFailure f) {
      steps.add("the source did not answer (" + f.getCause().getMessage()
          + "); failing over to the latest processed point");
    }
  }

  private DeltaRequest finalDelta() {
    return new DeltaRequest(plan, null, false, TransferSettings.DEFAULT);
  }

  private void startReplicaAt(long generation, ReplicaPoint replica) {
    if (onLayers) {
      runKey = Workflow.randomUUID().toString();
      startOnLayers(generation, replica);
      return;
    }
    if (generation != replica.appliedGeneration()) {
      setState(FailoverState.ROLLING_BACK);
      replicaChanged = true;
      replica = agents.rollbackReplica(plan.targetSite(), vm, generation);
      steps.add("replica rolled back from " + RecoveryPoint.idOf(replica.appliedGeneration())
          + " to " + RecoveryPoint.idOf(generation));
    }
    point = RecoveryPointChoice.pointOf(generation, replica);
    setState(FailoverState.STARTING_REPLICA);
    agents.powerOn(plan.targetSite(), vm);
    replicaStarted = true;
    replicaChanged = true;
    steps.add("replica VM started on " + plan.targetSite() + " at " + point.id() + " ("
        + point.time() + (point.appConsistent() ? ", app-consistent" : "") + ")");
  }

  /** Starts the replica VM at {@code generation} without writing the replica's disks. */
  private void startOnLayers(long generation, ReplicaPoint replica) {
    setState(FailoverState.STARTING_REPLICA);
    agents.startReplica(plan.targetSite(), vm, generation, runKey + "-" + ++starts);
    replicaStarted = true;
    point = RecoveryPointChoice.pointOf(generation, replica);
    pointsTried.add(point);
    steps.add("replica VM started on " + plan.targetSite() + " at " + point.id() + " ("
        + point.time() + (point.appConsistent() ? ", app-consistent" : "") + "); the replica's "
        + "disks stay at " + RecoveryPoint.idOf(replica.appliedGeneration()) + " until a commit");
  }

  private void rollBack(ProtectVmWorkflow protection) {
    if (fence != null) {
      fence.drop();
    }
    if (replicaStarted) {
      if (onLayers) {
        agents.stopReplica(plan.targetSite(), vm);
      } else {
        agents.powerOff(plan.targetSite(), vm);
      }
    }
    boolean stopped = sourceStopped();
    if (fence != null) {
      fence.lift();
    }
    if (stopped) {
      agents.powerOn(plan.sourceSite(), vm);
    }
    tellProtection(protection, FailoverNotice.Stage.CANCELLED);
  }

  /**
   * Tells ProtectVm how the failover ended. Its run can be missing for a moment while it continues
   * as new on Temporal's test server, so the signal is tried again; a ProtectVm that is gone for
   * good (terminated by hand) cannot undo the failover's own outcome, so after five tries that is
   * said and the failover goes on. Runs from before this replay with the single try.
   */
  private void tellProtection(ProtectVmWorkflow protection, FailoverNotice.Stage stage) {
    if (Workflow.getVersion("protectionNoticeRetried", Workflow.DEFAULT_VERSION, 1)
        == Workflow.DEFAULT_VERSION) {
      protection.failover(notice(stage));
      return;
    }
    for (int attempt = 1; ; attempt++) {
      try {
        protection.failover(notice(stage));
        return;
      } catch (SignalExternalWorkflowException | ApplicationFailure e) {
        if (attempt == 5) {
          steps.add(ProtectVmWorkflow.workflowId(vm) + " could not be told that the failover was "
              + stage.name().toLowerCase() + ": " + e.getMessage());
          return;
        }
        Workflow.sleep(Duration.ofSeconds(1));
      }
    }
  }

  private FailoverNotice notice(FailoverNotice.Stage stage) {
    return new FailoverNotice(Workflow.getInfo().getWorkflowId(), stage, replicaChanged);
  }

  private void setState(FailoverState next) {
    state = next;
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.PROTECTION_STATE.valueSet(
        "FAILOVER_" + next.name()));
    showDetails();
  }

  /** A TEST failover shows its own (TestFailover keeps them). */
  private void showDetails() {
    if (type != FailoverType.TEST) {
      FailoverDetails.show(status());
    }
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
  public void changeRecoveryPoint(ChangeRecoveryPoint request) {
    if (decision == null && request != null && request.recoveryPoint() != null) {
      requestedPoint = request.recoveryPoint();
    }
  }

  @Override
  public void copyProgress(CopyProgress p) {
    Long eta = p.bytesPerSecond() > 0
        ? (long) Math.ceil((p.bytesTotal() - p.bytesDone()) / p.bytesPerSecond()) : null;
    progress = new Progress(p.phase(), p.disk(), p.bytesDone(), p.bytesTotal(),
        p.bytesPerSecond(), eta);
    showDetails();
  }

  @Override
  public void cleanup(CleanupRequest request) {
    test.cleanup(request);
  }

  @Override
  public FailoverStatus status() {
    if (type == FailoverType.TEST) {
      return test.status();
    }
    return new FailoverStatus(vm, type, state, plan == null ? null : plan.sourceSite(),
        plan == null ? null : plan.targetSite(), point, steps.list(), error, startedAt,
        commitPolicy, decision == null ? decidesItselfAt : null, null, List.copyOf(pointsTried),
        fence == null ? null : fence.description(),
        state == FailoverState.COMMITTING ? progress : null);
  }
}
