package io.siterecovery.workflows.protection;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.DeltaRequest;
import io.siterecovery.activities.AgentActivityRecords.DiskResyncResult;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.ResyncDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.PolicyActivities;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.activities.ProtectionPlan.DiskInfo;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.common.Inputs;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.common.RetrySchedule;
import io.siterecovery.workflows.replication.InitialReplicationInput;
import io.siterecovery.workflows.replication.InitialReplicationResult;
import io.siterecovery.workflows.replication.InitialReplicationWorkflow;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.workflow.ChildWorkflowOptions;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.slf4j.Logger;

public class ProtectVmWorkflowImpl implements ProtectVmWorkflow {
  private static final Logger log = Workflow.getLogger(ProtectVmWorkflowImpl.class);
  static final String DEFAULT_POLICY = "default";
  /** Cycles per run before continue-as-new keeps the history small (~10 events a cycle). */
  static final int CYCLES_PER_RUN = 200;
  private static final String LOG_CORRUPT = "LOG_CORRUPT";

  private final PolicyActivities policies =
      Workflow.newLocalActivityStub(PolicyActivities.class, AgentSteps.policyLookup());
  private final AgentActivities agents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.shortStep());
  private final AgentActivities deltaAgents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.deltaCycle());
  private final AgentActivities longAgents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.diskCopy());

  private final ProtectionView view = new ProtectionView();
  private String vm;
  private String policyName;
  private PolicySettings policy;
  private ProtectionPlan plan;
  private Instant lastAppConsistentAt;

  private boolean pauseRequested;
  private boolean resumeRequested;
  private boolean disableRequested;
  private boolean resyncRequested;
  private String requestedPolicy;
  private FailoverNotice failover;

  @Override
  public ProtectionStatus protect(ProtectVmInput input) {
    Inputs.requireInput(input, "{\"vm\":\"web01\",\"policy\":\"default\"}");
    vm = Inputs.requireName("vm", input.vm());
    policyName = input.policy() == null ? DEFAULT_POLICY : Inputs.requireName("policy", input.policy());
    policy = policies.resolvePolicy(policyName);
    view.identify(vm, policyName, policy.rpoThreshold());
    plan = agents.planProtection(vm);
    view.plan(plan);
    view.state(ProtectionState.ENABLING);
    boolean seeded = agents.enableReplication(plan);
    if (seeded) {
      view.recordPoints(agents.replicaPoint(plan.targetSite(), vm));
    } else {
      if (!awaitInitialReplicationStart()) {
        return disableProtection();
      }
      initialReplication();
    }
    view.state(ProtectionState.PROTECTED);
    return replicate();
  }

  /** Waits for the policy's start time; false when protection was disabled meanwhile. */
  private boolean awaitInitialReplicationStart() {
    Instant start = policy.initialReplicationStart();
    Instant now = now();
    if (start == null || !start.isAfter(now)) {
      return true;
    }
    view.note("initial replication scheduled for " + start + " by policy " + policyName);
    Workflow.await(Duration.between(now, start), () -> disableRequested || resyncRequested);
    resyncRequested = false;
    return !disableRequested;
  }

  private void initialReplication() {
    view.state(ProtectionState.INITIAL_REPLICATION);
    view.phase("INITIAL_REPLICATION");
    InitialReplicationWorkflow child = Workflow.newChildWorkflowStub(
        InitialReplicationWorkflow.class,
        ChildWorkflowOptions.newBuilder()
            .setWorkflowId(InitialReplicationWorkflow.workflowId(vm)).build());
    InitialReplicationResult copied = child.replicate(new InitialReplicationInput(plan,
        policy.transfer(), Workflow.getInfo().getWorkflowId()));
    view.note("initial copy done: " + copied.bytesRead() + " bytes read, " + copied.bytesSent()
        + " sent in " + copied.durationMillis() + " ms");
    // Finalize: merge the changes tracked during the copy, then mark the replica consistent.
    view.phase("FINALIZING");
    view.recordCycle(agents.replicateDelta(deltaRequest(false)));
    agents.completeInitialReplication(plan);
  }

  private ProtectionStatus replicate() {
    int cyclesThisRun = 0;
    int consecutiveFailures = 0;
    while (true) {
      if (view.resyncPending() && !disableRequested && failover == null) {
        if (awaitResyncDue()) {
          try {
            runResync();
            consecutiveFailures = 0;
          } catch (ActivityFailure f) {
            Instant retry = now().plus(RetrySchedule.LONG_TERM);
            view.health(Health.WARNING, List.of("resync failed: " + f.getCause().getMessage()
                + "; trying again at " + retry));
            view.resyncPending(view.resyncReason(), retry);
          }
        }
        continue;
      }
      Duration wait = consecutiveFailures == 0
          ? policy.copyFrequency() : RetrySchedule.delayAfter(consecutiveFailures);
      Workflow.await(wait,
          () -> pauseRequested || disableRequested || failover != null || resyncRequested);
      if (disableRequested) {
        return disableProtection();
      }
      if (failover != null) {
        if (!sitOutFailover()) {
          return view.status();
        }
        continue;
      }
      if (pauseRequested) {
        view.state(ProtectionState.PAUSED);
        Workflow.await(() -> !pauseRequested || disableRequested || failover != null);
        view.state(ProtectionState.PROTECTED);
        continue;
      }
      if (resyncRequested) {
        view.resyncPending("requested by the operator", now());
        continue;
      }
      refreshPolicy();
      boolean quiesce = appConsistentPointDue();
      try {
        ReplicationCycle cycle = deltaAgents.replicateDelta(deltaRequest(quiesce));
        consecutiveFailures = 0;
        view.recordCycle(cycle);
        if (cycle.appConsistent()) {
          lastAppConsistentAt = now();
        }
        view.health(Health.NORMAL, quiesce && !cycle.appConsistent()
            ? List.of("app-consistent point failed, " + RecoveryPoint.idOf(
                cycle.lastSealedGeneration()) + " is crash-consistent: " + cycle.quiesceMessage())
            : List.of());
        checkSource(cycle.source());
      } catch (ActivityFailure f) {
        view.cycleFailed();
        ApplicationFailure cause = f.getCause() instanceof ApplicationFailure a ? a : null;
        String message = cause != null ? cause.getOriginalMessage() : f.getCause().getMessage();
        if (cause != null && LOG_CORRUPT.equals(cause.getType())) {
          markResync("a log failed verification: " + message);
          continue;
        }
        if (cause != null && cause.isNonRetryable()) {
          view.health(Health.CRITICAL, List.of("delta replication stopped: " + message
              + " (" + cause.getType() + "); send 'resume' after fixing it, or 'disable'"));
          resumeRequested = false;
          Workflow.await(() -> resumeRequested || disableRequested || failover != null
              || resyncRequested);
          continue;
        }
        consecutiveFailures++;
        Duration next = RetrySchedule.delayAfter(consecutiveFailures);
        view.health(Health.WARNING, List.of("delta replication failed " + consecutiveFailures
            + " time(s) in a row: " + message + "; retrying in " + next.toMinutes() + " min"));
        checkSourceAfterFailure();
      }
      cyclesThisRun++;
      if (consecutiveFailures == 0 && !view.resyncPending() && (cyclesThisRun >= CYCLES_PER_RUN
          || Workflow.getInfo().isContinueAsNewSuggested())) {
        Workflow.continueAsNew(new ProtectVmInput(vm, policyName));
      }
    }
  }

  private DeltaRequest deltaRequest(boolean quiesce) {
    return new DeltaRequest(plan,
        policy.retention() == null ? null : policy.retention().toSeconds(), quiesce,
        policy.transfer());
  }

  private boolean appConsistentPointDue() {
    Duration every = policy.appConsistentFrequency();
    return every != null && (lastAppConsistentAt == null
        || !now().isBefore(lastAppConsistentAt.plus(every)));
  }

  /** Picks up a policy switch or an edited policy; the new settings apply from this cycle. */
  private void refreshPolicy() {
    if (requestedPolicy != null) {
      String next = requestedPolicy;
      requestedPolicy = null;
      try {
        policy = policies.resolvePolicy(next);
        view.note("policy changed from " + policyName + " to " + next);
        policyName = next;
      } catch (ActivityFailure f) {
        view.note("policy change to '" + next + "' refused: " + f.getCause().getMessage());
      }
    } else {
      policy = policies.resolvePolicy(policyName);
    }
    view.policy(policyName, policy.rpoThreshold());
  }

  /** The seeds' trigger: a resync is cheaper once unshipped logs reach half the disks' size. */
  private void checkSource(SourceHealth source) {
    if (source == null) {
      return;
    }
    if (source.resyncRequiredReason() != null) {
      markResync(source.resyncRequiredReason());
    } else if (source.logsExceedHalfTheDisks()) {
      markResync("unshipped logs (" + source.pendingBytes() + " bytes) reached 50 % of the "
          + "disks' size (" + source.diskBytes() + " bytes)");
    }
  }

  private void checkSourceAfterFailure() {
    try {
      checkSource(agents.sourceHealth(plan));
    } catch (ActivityFailure unreachable) {
      // The source itself is what fails; the next cycle tries again.
    }
  }

  private void markResync(String reason) {
    Instant due = policy.resyncWindow() == null ? now() : policy.resyncWindow().nextOpening(now());
    view.resyncPending(reason, due);
    view.note("resync needed (" + reason + "); pending until " + due);
  }

  /** Waits for the resync window or an operator's resync; false if something else came first. */
  private boolean awaitResyncDue() {
    Duration wait = Duration.between(now(), view.resyncPendingUntil());
    if (!wait.isNegative() && !wait.isZero()) {
      Workflow.await(wait, () -> resyncRequested || disableRequested || failover != null);
    }
    return !disableRequested && failover == null;
  }

  private void runResync() {
    resyncRequested = false;
    view.state(ProtectionState.RESYNCING);
    view.phase("RESYNC");
    long generation = agents.beginResync(plan);
    long compared = 0;
    long differing = 0;
    long sent = 0;
    for (DiskInfo disk : plan.disks()) {
      DiskResyncResult r = longAgents.resyncDisk(new ResyncDiskRequest(plan, disk.name(),
          disk.sizeBytes(), policy.transfer(), Workflow.getInfo().getWorkflowId()));
      compared += r.blocksCompared();
      differing += r.blocksDiffering();
      sent += r.bytesSent();
    }
    view.recordPoints(agents.completeResync(plan));
    // The replica holds no point until the generation after the resync is applied: ship it now.
    view.recordCycle(agents.replicateDelta(deltaRequest(false)));
    view.note("resync at generation " + generation + " done (" + view.resyncReason() + "): "
        + differing + " of " + compared + " blocks differed, " + sent
        + " bytes sent; recovery points older than the resync were dropped");
    view.resyncDone();
    view.health(Health.NORMAL, List.of());
    view.state(ProtectionState.PROTECTED);
  }

  /** Waits while a Failover runs; returns false when it committed and protection is over. */
  private boolean sitOutFailover() {
    view.state(ProtectionState.FAILED_OVER);
    Workflow.await(() -> failover.stage() != FailoverNotice.Stage.STARTED);
    if (failover.stage() == FailoverNotice.Stage.COMMITTED) {
      view.note("failover committed; protection in this direction ends");
      return false;
    }
    boolean resync = failover.resyncRequired();
    failover = null;
    view.state(ProtectionState.PROTECTED);
    view.note("failover cancelled; protection resumes");
    if (resync) {
      view.resyncPending("the replica was rolled back or changed during the failover", now());
    }
    return true;
  }

  private ProtectionStatus disableProtection() {
    agents.disableReplication(plan);
    view.state(ProtectionState.DISABLED);
    view.clearPoints();
    return view.status();
  }

  private static Instant now() {
    return Instant.ofEpochMilli(Workflow.currentTimeMillis());
  }

  @Override
  public void pause(OperatorRequest request) {
    pauseRequested = true;
  }

  @Override
  public void resume(OperatorRequest request) {
    pauseRequested = false;
    resumeRequested = true;
  }

  @Override
  public void disable(OperatorRequest request) {
    disableRequested = true;
  }

  @Override
  public void resync(OperatorRequest request) {
    resyncRequested = true;
  }

  @Override
  public void setPolicy(PolicyChange change) {
    if (change != null && change.policy() != null) {
      requestedPolicy = change.policy();
    }
  }

  @Override
  public void copyProgress(CopyProgress p) {
    if (view.state() == ProtectionState.INITIAL_REPLICATION
        || view.state() == ProtectionState.RESYNCING) {
      view.copyProgress(p);
    }
  }

  @Override
  public void failover(FailoverNotice notice) {
    failover = notice;
  }

  @Override
  public ProtectionStatus status() {
    return view.status();
  }
}
