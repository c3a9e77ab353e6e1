package io.siterecovery.workflows.protection;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.PolicySettings;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.PolicyActivities;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.common.Inputs;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.common.RetrySchedule;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.replication.InitialReplicationInput;
import io.siterecovery.workflows.replication.InitialReplicationResult;
import io.siterecovery.workflows.replication.InitialReplicationWorkflow;
import io.temporal.activity.LocalActivityOptions;
import io.temporal.common.RetryOptions;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.workflow.ChildWorkflowOptions;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;

public class ProtectVmWorkflowImpl implements ProtectVmWorkflow {
  private static final Logger log = Workflow.getLogger(ProtectVmWorkflowImpl.class);
  static final String DEFAULT_POLICY = "default";
  /** Cycles per run before continue-as-new keeps the history small (~10 events a cycle). */
  static final int CYCLES_PER_RUN = 200;

  private final PolicyActivities policies = Workflow.newLocalActivityStub(PolicyActivities.class,
      LocalActivityOptions.newBuilder().setStartToCloseTimeout(Duration.ofSeconds(10))
          .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(3).build()).build());
  private final AgentActivities agents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.shortStep());
  private final AgentActivities deltaAgents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.deltaCycle());

  private String vm;
  private String policyName;
  private ProtectionPlan plan;
  private ProtectionState state = ProtectionState.ENABLING;
  private Health health = Health.NORMAL;
  private final List<String> healthReasons = new ArrayList<>();
  private RecoveryPoint latestPoint;
  private Progress progress;
  private final Map<String, CopyProgress> copyProgress = new LinkedHashMap<>();
  private long deltaCycles;
  private long failedCycles;
  private long bytesShipped;
  private Instant lastCycleAt;
  private Duration rpoThreshold;

  private boolean pauseRequested;
  private boolean resumeRequested;
  private boolean disableRequested;
  private FailoverNotice failover;

  @Override
  public ProtectionStatus protect(ProtectVmInput input) {
    Inputs.requireInput(input, "{\"vm\":\"web01\",\"policy\":\"default\"}");
    vm = Inputs.requireName("vm", input.vm());
    policyName = input.policy() == null ? DEFAULT_POLICY : Inputs.requireName("policy", input.policy());
    PolicySettings policy = policies.resolvePolicy(policyName);
    rpoThreshold = policy.rpoThreshold();
    plan = agents.planProtection(vm);
    Workflow.upsertTypedSearchAttributes(
        SearchAttributeKeys.VM_NAME.valueSet(vm),
        SearchAttributeKeys.SOURCE_SITE.valueSet(plan.sourceSite()),
        SearchAttributeKeys.TARGET_SITE.valueSet(plan.targetSite()));
    setState(ProtectionState.ENABLING);
    boolean seeded = agents.enableReplication(plan);
    if (seeded) {
      ReplicaPoint point = agents.replicaPoint(plan.targetSite(), vm);
      latestPoint = RecoveryPoint.of(point.appliedGeneration(), point.pointTime());
    } else {
      initialReplication();
    }
    setState(ProtectionState.PROTECTED);
    return replicate(input, policy);
  }

  private void initialReplication() {
    setState(ProtectionState.INITIAL_REPLICATION);
    progress = new Progress("INITIAL_REPLICATION", null, 0, plan.totalBytes(), 0, null);
    InitialReplicationWorkflow child = Workflow.newChildWorkflowStub(
        InitialReplicationWorkflow.class,
        ChildWorkflowOptions.newBuilder()
            .setWorkflowId(InitialReplicationWorkflow.workflowId(vm)).build());
    InitialReplicationResult copied =
        child.replicate(new InitialReplicationInput(plan, Workflow.getInfo().getWorkflowId()));
    log.info("initial copy of {} done: {} bytes read, {} sent in {} ms", vm, copied.bytesRead(),
        copied.bytesSent(), copied.durationMillis());
    // Finalize: merge the changes tracked during the copy, then mark the replica consistent.
    progress = new Progress("FINALIZING", null, plan.totalBytes(), plan.totalBytes(), 0, 0L);
    ReplicationCycle merged = agents.replicateDelta(plan);
    recordCycle(merged);
    agents.completeInitialReplication(plan);
    progress = null;
  }

  private ProtectionStatus replicate(ProtectVmInput input, PolicySettings policy) {
    int cyclesThisRun = 0;
    int consecutiveFailures = 0;
    while (true) {
      Duration wait = consecutiveFailures == 0
          ? policy.copyFrequency() : RetrySchedule.delayAfter(consecutiveFailures);
      Workflow.await(wait, () -> pauseRequested || disableRequested || failover != null);
      if (disableRequested) {
        return disableProtection();
      }
      if (failover != null) {
        if (!sitOutFailover()) {
          return status();
        }
        continue;
      }
      if (pauseRequested) {
        setState(ProtectionState.PAUSED);
        Workflow.await(() -> !pauseRequested || disableRequested || failover != null);
        setState(ProtectionState.PROTECTED);
        continue;
      }
      try {
        recordCycle(deltaAgents.replicateDelta(plan));
        consecutiveFailures = 0;
        setHealth(Health.NORMAL, List.of());
      } catch (ActivityFailure f) {
        failedCycles++;
        ApplicationFailure cause = f.getCause() instanceof ApplicationFailure a ? a : null;
        String message = cause != null ? cause.getOriginalMessage() : f.getCause().getMessage();
        if (cause != null && cause.isNonRetryable()) {
          setHealth(Health.CRITICAL, List.of("delta replication stopped: " + message
              + " (" + cause.getType() + "); send 'resume' after fixing it, or 'disable'"));
          resumeRequested = false;
          Workflow.await(() -> resumeRequested || disableRequested || failover != null);
          consecutiveFailures = 0;
          continue;
        }
        consecutiveFailures++;
        Duration next = RetrySchedule.delayAfter(consecutiveFailures);
        setHealth(Health.WARNING, List.of("delta replication failed " + consecutiveFailures
            + " time(s) in a row: " + message + "; retrying in " + next.toMinutes() + " min"));
      }
      cyclesThisRun++;
      if (consecutiveFailures == 0 && (cyclesThisRun >= CYCLES_PER_RUN
          || Workflow.getInfo().isContinueAsNewSuggested())) {
        Workflow.continueAsNew(input);
      }
    }
  }

  /** Waits while a Failover runs; returns false when it committed and protection is over. */
  private boolean sitOutFailover() {
    setState(ProtectionState.FAILED_OVER);
    Workflow.await(() -> failover.stage() != FailoverNotice.Stage.STARTED);
    if (failover.stage() == FailoverNotice.Stage.COMMITTED) {
      log.info("failover of {} committed; protection in this direction ends", vm);
      return false;
    }
    log.info("failover of {} cancelled; protection resumes", vm);
    failover = null;
    setState(ProtectionState.PROTECTED);
    return true;
  }

  private ProtectionStatus disableProtection() {
    agents.disableReplication(plan);
    setState(ProtectionState.DISABLED);
    latestPoint = null;
    return status();
  }

  private void recordCycle(ReplicationCycle cycle) {
    deltaCycles++;
    bytesShipped += cycle.bytesShipped();
    lastCycleAt = Instant.ofEpochMilli(Workflow.currentTimeMillis());
    if (cycle.pointTime() != null) {
      latestPoint = RecoveryPoint.of(cycle.appliedGeneration(), cycle.pointTime());
    }
  }

  private void setState(ProtectionState next) {
    state = next;
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.PROTECTION_STATE.valueSet(next.name()),
        SearchAttributeKeys.REPLICATION_HEALTH.valueSet(health.name()));
  }

  private void setHealth(Health next, List<String> reasons) {
    boolean changed = next != health;
    health = next;
    healthReasons.clear();
    healthReasons.addAll(reasons);
    if (changed) {
      Workflow.upsertTypedSearchAttributes(
          SearchAttributeKeys.REPLICATION_HEALTH.valueSet(next.name()));
      reasons.forEach(r -> log.warn("{}: {} {}", vm, next, r));
    }
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
  public void copyProgress(CopyProgress p) {
    if (state != ProtectionState.INITIAL_REPLICATION) {
      return;
    }
    copyProgress.put(p.disk(), p);
    long done = copyProgress.values().stream().mapToLong(CopyProgress::bytesDone).sum();
    long total = plan.totalBytes();
    Long eta = p.bytesPerSecond() > 0 ? (long) Math.ceil((total - done) / p.bytesPerSecond()) : null;
    progress = new Progress("INITIAL_REPLICATION", p.disk(), done, total, p.bytesPerSecond(), eta);
  }

  @Override
  public void failover(FailoverNotice notice) {
    failover = notice;
  }

  @Override
  public ProtectionStatus status() {
    Long rpo = null;
    List<String> reasons = new ArrayList<>(healthReasons);
    Health reported = health;
    if (latestPoint != null && latestPoint.time() != null && state == ProtectionState.PROTECTED) {
      rpo = Math.max(0, (Workflow.currentTimeMillis() - latestPoint.time().toEpochMilli()) / 1000);
      if (rpoThreshold != null && rpo > rpoThreshold.toSeconds() && reported == Health.NORMAL) {
        reported = Health.WARNING;
        reasons.add("RPO " + rpo + " s exceeds the policy's " + rpoThreshold.toSeconds() + " s");
      }
    }
    return new ProtectionStatus(vm, policyName, state, reported, reasons,
        plan == null ? null : plan.sourceSite(), plan == null ? null : plan.targetSite(), rpo,
        latestPoint, progress, deltaCycles, failedCycles, bytesShipped, lastCycleAt);
  }
}
