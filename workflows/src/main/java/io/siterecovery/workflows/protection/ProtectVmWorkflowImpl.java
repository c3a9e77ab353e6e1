package io.siterecovery.workflows.protection;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.DeltaRequest;
import io.siterecovery.activities.AgentActivityRecords.DiskResyncResult;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.ResyncDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.PolicyActivities;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.activities.ProtectionPlan.DiskInfo;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.common.Inputs;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.common.RetrySchedule;
import io.siterecovery.workflows.replication.CopyRetrying;
import io.siterecovery.workflows.replication.InitialReplicationInput;
import io.siterecovery.workflows.replication.InitialReplicationResult;
import io.siterecovery.workflows.replication.InitialReplicationWorkflow;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.CanceledFailure;
import io.temporal.failure.ChildWorkflowFailure;
import io.temporal.workflow.Async;
import io.temporal.workflow.CancellationScope;
import io.temporal.workflow.ChildWorkflowOptions;
import io.temporal.workflow.Functions;
import io.temporal.workflow.Promise;
import io.temporal.workflow.Workflow;
import java.time.DateTimeException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;
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
  private final AgentActivities finalSyncAgents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.finalSync());
  /** A probe whose failure the replication loop's own back-off already covers. */
  private final AgentActivities probeAgents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.oneShortAttempt());

  /*
   * The changes of issue 10, each behind its version so that runs recorded before them replay.
   * Read once at the start of a run: a run that began before keeps the old behaviour until it
   * continues as new (200 cycles at most), and then runs the new one.
   */
  /** Waits wake when health changes (RPO threshold, missed cycles) and upsert it. */
  private boolean healthWhileWaiting;
  /** Continue-as-new carries the run's state and acts on pending requests first. */
  private boolean carryOverContinueAsNew;
  /** Short steps retry every 30 minutes for as long as they fail; long deltas get long timeouts. */
  private boolean longTermShortSteps;
  /** Disable and pause stop the initial copy and a resync's disk copies. */
  private boolean stoppableCopies;

  /**
   * Cycles start at a fixed rate, copyFrequency after the previous one started (at once if it
   * took longer): the oldest a point gets is F + one cycle, not F + two (issue 10's bench).
   */
  private boolean fixedRateCycles;
  /**
   * The delta runs as a promise the loop waits on while watching health: a cycle that hangs (a
   * peer that never answers) turns ReplicationHealth WARNING when the RPO crosses the threshold,
   * instead of when the activity finally times out.
   */
  private boolean healthDuringCycles;

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

  /** Thrown where a disable interrupts a step or a copy; {@link #protect} disables protection. */
  private static final class DisableRequested extends RuntimeException {
    DisableRequested() {
      super("disable requested", null, false, false);
    }
  }

  /** Thrown where a pause stops a resync's copy; the resync stays pending until resumed. */
  private static final class PausedDuringCopy extends RuntimeException {
    PausedDuringCopy() {
      super("paused during a copy", null, false, false);
    }
  }

  @Override
  public ProtectionStatus protect(ProtectVmInput input) {
    Inputs.requireInput(input, "{\"vm\":\"web01\",\"policy\":\"default\"}");
    vm = Inputs.requireName("vm", input.vm());
    policyName = input.policy() == null ? DEFAULT_POLICY : Inputs.requireName("policy", input.policy());
    healthWhileWaiting = isNew("healthWhileWaiting");
    carryOverContinueAsNew = isNew("carryOverContinueAsNew");
    longTermShortSteps = isNew("longTermShortSteps");
    stoppableCopies = isNew("stoppableCopies");
    fixedRateCycles = isNew("fixedRateCycles");
    healthDuringCycles = isNew("healthDuringCycles");
    policy = resolveStartingPolicy(input.carried());
    view.identify(vm, policyName, policy.rpoThreshold(), policy.copyFrequency(),
        healthWhileWaiting, fixedRateCycles);
    if (carryOverContinueAsNew && input.carried() != null) {
      restore(input.carried());
    }
    try {
      // Inputs without a target (every run before targets existed, and every continued run: the
      // agent's protection record remembers it) plan as they always did.
      String target = input.targetSite() == null ? null
          : Inputs.requireName("targetSite", input.targetSite());
      plan = step("planning protection", () -> target == null ? agents.planProtection(vm)
          : agents.planProtectionTo(vm, target));
      view.plan(plan);
      view.state(ProtectionState.ENABLING);
      boolean seeded = step("enabling replication", () -> agents.enableReplication(plan));
      if (seeded) {
        view.recordPoints(step("reading the replica's points",
            () -> agents.replicaPoint(plan.targetSite(), vm)));
      } else {
        if (!awaitInitialReplicationStart()) {
          return disableProtection();
        }
        initialReplication();
      }
      view.state(ProtectionState.PROTECTED);
      return replicate();
    } catch (DisableRequested d) {
      return disableProtection();
    }
  }

  /**
   * The policy's current settings. A run continued from another keeps the previous run's
   * settings when the lookup refuses (an edit made the policy unknown or invalid): protection
   * must not end at a continue-as-new because of a configuration mistake.
   */
  private PolicySettings resolveStartingPolicy(CarriedState carried) {
    if (!carryOverContinueAsNew || carried == null || carried.policySettings() == null) {
      return policies.resolvePolicy(policyName);
    }
    try {
      return policies.resolvePolicy(policyName);
    } catch (ActivityFailure f) {
      view.note("policy '" + policyName + "' could not be read (" + messageOf(f)
          + "); keeping its previous settings");
      return carried.policySettings();
    }
  }

  private static boolean isNew(String change) {
    return Workflow.getVersion(change, Workflow.DEFAULT_VERSION, 1) == 1;
  }

  private void restore(CarriedState c) {
    view.restore(c);
    lastAppConsistentAt = c.lastAppConsistentAt();
    pauseRequested |= c.pauseRequested();
    resyncRequested |= c.resyncRequested();
    if (requestedPolicy == null) {
      requestedPolicy = c.requestedPolicy();
    }
  }

  /**
   * A short agent step. Temporal retries a recoverable failure 1, 2, 4, 8 and 10 minutes apart;
   * after that the step is tried again every {@link RetrySchedule#LONG_TERM} for as long as the
   * failure lasts (the seeds' second stage), health WARNING meanwhile, instead of failing the
   * workflow. A disable stops the step (even one under way) and disables protection; a pause
   * holds the next attempt until resume. A non-recoverable failure is thrown as before.
   */
  private <T> T step(String what, Functions.Func<T> call) {
    return step(what, call, true);
  }

  /** {@code stoppable} false: disable and pause do not interrupt it (the disable itself). */
  private <T> T step(String what, Functions.Func<T> call, boolean stoppable) {
    if (!longTermShortSteps) {
      return call.apply();
    }
    int rounds = 0;
    while (true) {
      try {
        T result = stoppable ? untilDisabled(call) : call.apply();
        if (rounds > 0) {
          view.health(Health.NORMAL, List.of());
          view.note(what + " succeeded after " + rounds + " round(s) of retries");
        }
        return result;
      } catch (ActivityFailure f) {
        if (f.getCause() instanceof ApplicationFailure a && a.isNonRetryable()) {
          throw f;
        }
        rounds++;
        Instant retry = now().plus(RetrySchedule.LONG_TERM);
        view.health(Health.WARNING, List.of(what + " still failing after its retries ("
            + messageOf(f) + "); trying again at " + retry + " (round " + rounds + ")"));
        if (!stoppable) {
          Workflow.sleep(RetrySchedule.LONG_TERM);
          continue;
        }
        awaitWatchingHealth(RetrySchedule.LONG_TERM, () -> disableRequested);
        if (disableRequested) {
          throw new DisableRequested();
        }
        holdWhilePaused();
      }
    }
  }

  /** Runs {@code call} in its own scope, cancelled if a disable comes first. */
  private <T> T untilDisabled(Functions.Func<T> call) {
    List<Promise<T>> result = new ArrayList<>(1);
    CancellationScope scope = Workflow.newCancellationScope(
        () -> { result.add(Async.function(call)); });
    scope.run();
    Workflow.await(() -> result.get(0).isCompleted() || disableRequested);
    if (!result.get(0).isCompleted()) {
      scope.cancel();
      throw new DisableRequested();
    }
    return result.get(0).get();
  }

  /** While paused outside the replication loop: PAUSED until resume; a disable ends it. */
  private void holdWhilePaused() {
    if (!pauseRequested) {
      return;
    }
    ProtectionState before = view.state();
    view.state(ProtectionState.PAUSED);
    awaitWatchingHealth(null, () -> !pauseRequested || disableRequested);
    if (disableRequested) {
      throw new DisableRequested();
    }
    view.state(before);
  }

  private static String messageOf(ActivityFailure f) {
    return f.getCause() instanceof ApplicationFailure a ? a.getOriginalMessage()
        : f.getCause().getMessage();
  }

  /**
   * Waits up to {@code max} (null: no limit) for {@code condition}; true when it held. Also wakes
   * at each instant the health changes while nothing else happens (the RPO crossing the policy's
   * threshold, the missed-cycle rule flipping) to upsert ReplicationHealth on time, whatever
   * the workflow is waiting for: the next cycle, a retry, a resume, a resync window.
   */
  private boolean awaitWatchingHealth(Duration max, Supplier<Boolean> condition) {
    if (!healthWhileWaiting) {
      if (max == null) {
        Workflow.await(condition);
        return true;
      }
      return Workflow.await(max, condition);
    }
    Instant deadline = max == null ? null : now().plus(max);
    while (true) {
      Instant now = now();
      if (deadline != null && !now.isBefore(deadline)) {
        return condition.get();
      }
      Instant change = view.nextHealthChange(now);
      Instant until = deadline == null ? change
          : change == null || deadline.isBefore(change) ? deadline : change;
      if (until == null) {
        Workflow.await(condition);
        return true;
      }
      if (Workflow.await(Duration.between(now, until), condition)) {
        return true;
      }
      view.refreshHealth(now());
    }
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
    InitialReplicationInput input = new InitialReplicationInput(plan, policy.transfer(),
        Workflow.getInfo().getWorkflowId());
    InitialReplicationResult copied = stoppableCopies ? copyUntilDone(input)
        : initialCopy().replicate(input);
    view.note("initial copy done: " + copied.bytesRead() + " bytes read, " + copied.bytesSent()
        + " sent in " + copied.durationMillis() + " ms");
    // Finalize: merge the changes tracked during the copy, then mark the replica consistent.
    view.phase("FINALIZING");
    AgentActivities finalizer = longTermShortSteps ? finalSyncAgents : agents;
    view.recordCycle(step("finalizing the initial copy",
        () -> finalizer.replicateDelta(deltaRequest(false))));
    step("completing the initial replication", () -> {
      agents.completeInitialReplication(plan);
      return null;
    });
  }

  private InitialReplicationWorkflow initialCopy() {
    return Workflow.newChildWorkflowStub(InitialReplicationWorkflow.class,
        ChildWorkflowOptions.newBuilder()
            .setWorkflowId(InitialReplicationWorkflow.workflowId(vm))
            .setStaticSummary(Summaries.initialCopy(vm, plan.sourceSite(), plan.targetSite()))
            .build());
  }

  /**
   * The initial copy as a child that a disable or a pause stops (an unreachable target can keep
   * it retrying for hours): a disable cancels it and disables protection; a pause cancels it
   * and starts it again on resume, each disk from the bytes its progress last reported.
   */
  private InitialReplicationResult copyUntilDone(InitialReplicationInput first) {
    InitialReplicationInput input = first;
    while (true) {
      List<Promise<InitialReplicationResult>> copy = new ArrayList<>(1);
      InitialReplicationWorkflow child = initialCopy();
      InitialReplicationInput thisCopy = input;
      CancellationScope scope = Workflow.newCancellationScope(
          () -> { copy.add(Async.function(child::replicate, thisCopy)); });
      scope.run();
      Workflow.await(() -> copy.get(0).isCompleted() || disableRequested || pauseRequested);
      if (copy.get(0).isCompleted()) {
        InitialReplicationResult copied = copy.get(0).get();
        view.health(Health.NORMAL, List.of());
        return copied;
      }
      scope.cancel();
      try {
        copy.get(0).get();
      } catch (ChildWorkflowFailure | CanceledFailure stopped) {
        // The cancel this workflow asked for.
      }
      if (disableRequested) {
        throw new DisableRequested();
      }
      // What this copy reported, else what the one before it did (a pause before any report).
      Map<String, Long> copied = new LinkedHashMap<>(
          input.copiedBytes() == null ? Map.of() : input.copiedBytes());
      view.copiedBytes().forEach((disk, bytes) -> copied.merge(disk, bytes, Math::max));
      input = new InitialReplicationInput(input.plan(), input.transfer(),
          input.progressWorkflowId(), copied);
      view.note("initial copy stopped by a pause at " + input.copiedBytes()
          + " bytes; it goes on from there on resume");
      holdWhilePaused();
      view.state(ProtectionState.INITIAL_REPLICATION);
      view.phase("INITIAL_REPLICATION");
    }
  }

  private ProtectionStatus replicate() {
    int cyclesThisRun = 0;
    int consecutiveFailures = 0;
    view.cyclesStart(now());
    while (true) {
      if (view.resyncPending() && !disableRequested && failover == null
          && !(stoppableCopies && pauseRequested)) {
        if (awaitResyncDue()) {
          try {
            runResync();
            consecutiveFailures = 0;
          } catch (PausedDuringCopy paused) {
            view.resyncPending(view.resyncReason(), now());
            view.note("resync stopped by a pause; it runs again on resume");
          } catch (ActivityFailure f) {
            Instant retry = now().plus(RetrySchedule.LONG_TERM);
            view.health(Health.WARNING, List.of("resync failed: " + f.getCause().getMessage()
                + "; trying again at " + retry));
            view.resyncPending(view.resyncReason(), retry);
          }
        }
        continue;
      }
      Duration wait = consecutiveFailures > 0 ? RetrySchedule.delayAfter(consecutiveFailures)
          : fixedRateCycles ? view.untilNextCycle(now()) : policy.copyFrequency();
      awaitWatchingHealth(wait,
          () -> pauseRequested || disableRequested || failover != null || resyncRequested);
      if (disableRequested) {
        return disableProtection();
      }
      if (failover != null) {
        if (!sitOutFailover()) {
          return view.status(now());
        }
        continue;
      }
      if (pauseRequested) {
        view.state(ProtectionState.PAUSED);
        awaitWatchingHealth(null, () -> !pauseRequested || disableRequested || failover != null);
        view.state(stoppableCopies && view.resyncPending() ? ProtectionState.RESYNC_PENDING
            : ProtectionState.PROTECTED);
        continue;
      }
      if (resyncRequested) {
        view.resyncPending("requested by the operator", now());
        continue;
      }
      refreshPolicy();
      boolean quiesce = appConsistentPointDue();
      Instant cycleStarted = now();
      try {
        ReplicationCycle cycle = runCycle(deltaRequest(quiesce), cycleStarted);
        consecutiveFailures = 0;
        view.cycleOutcome(cycleStarted, now(), true);
        view.recordCycle(cycle);
        if (cycle.appConsistent()) {
          // The source quiesces as the cycle starts. Measured from there, the app-consistent
          // interval stays on the fixed-rate grid; measured from the end, a point due at the
          // very start of a cycle would wait a whole period more.
          lastAppConsistentAt = fixedRateCycles ? cycleStarted : now();
        }
        view.health(Health.NORMAL, quiesce && !cycle.appConsistent()
            ? List.of("app-consistent point failed, " + RecoveryPoint.idOf(
                cycle.lastSealedGeneration()) + " is crash-consistent: " + cycle.quiesceMessage())
            : List.of());
        view.refreshHealth(now());
        checkSource(cycle.source());
      } catch (ActivityFailure f) {
        view.cycleFailed();
        view.cycleOutcome(cycleStarted, now(), false);
        ApplicationFailure cause = f.getCause() instanceof ApplicationFailure a ? a : null;
        String message = messageOf(f);
        if (cause != null && LOG_CORRUPT.equals(cause.getType())) {
          markResync("a log failed verification: " + message);
          continue;
        }
        if (cause != null && cause.isNonRetryable()) {
          view.health(Health.CRITICAL, List.of("delta replication stopped: " + message
              + " (" + cause.getType() + "); send 'resume' after fixing it, or 'disable'"));
          resumeRequested = false;
          awaitWatchingHealth(null, () -> resumeRequested || disableRequested || failover != null
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
        continueAsNew();
      }
    }
  }

  /**
   * One delta cycle. Waiting on it as a promise, rather than blocked in the call, lets the
   * health-watching wait upsert the RPO's WARNING on time while it runs (a hung agent call lasts
   * up to the activity's timeout). Disable, pause and the other requests still wait for the
   * cycle's end, as before.
   */
  private ReplicationCycle runCycle(DeltaRequest request, Instant startedAt) {
    if (!healthDuringCycles) {
      return deltaAgents.replicateDelta(request);
    }
    Promise<ReplicationCycle> cycle = Async.function(deltaAgents::replicateDelta, request);
    view.cycleRunning(startedAt);
    awaitCycle(cycle);
    return cycle.get();
  }

  /**
   * Waits for the cycle under way, waking at each instant the health changes meanwhile (the RPO
   * crossing the threshold) to upsert it. Unlike {@link #awaitWatchingHealth}, the wake-up timer
   * is cancelled when the cycle ends first: this wait comes with every cycle, and a timer left to
   * fire later would add a workflow task to the history each time for nothing.
   */
  private void awaitCycle(Promise<ReplicationCycle> cycle) {
    while (!cycle.isCompleted()) {
      Instant now = now();
      Instant change = view.nextHealthChange(now);
      if (change == null) {
        Workflow.await(cycle::isCompleted);
        return;
      }
      List<Promise<Void>> wake = new ArrayList<>(1);
      CancellationScope timer = Workflow.newCancellationScope(
          () -> { wake.add(Workflow.newTimer(Duration.between(now, change))); });
      timer.run();
      Workflow.await(() -> cycle.isCompleted() || wake.get(0).isCompleted());
      if (wake.get(0).isCompleted()) {
        view.refreshHealth(now());
      } else {
        timer.cancel();
      }
    }
  }

  /**
   * Starts the next run with this one's state. Signals are drained first, and a request that
   * must be acted on (pause, disable, resync, a policy switch, a failover) keeps this run going
   * until it has been: the next cycle boundary continues as new instead.
   */
  private void continueAsNew() {
    if (!carryOverContinueAsNew) {
      Workflow.continueAsNew(new ProtectVmInput(vm, policyName));
      return;
    }
    // The handlers are synchronous today; this also holds if one ever waits.
    Workflow.await(Workflow::isEveryHandlerFinished);
    if (pauseRequested || disableRequested || resyncRequested || requestedPolicy != null
        || failover != null) {
      return;
    }
    // The requests are carried as well, though none can be pending here: the record states
    // the whole hand-over, and a later change to the check above cannot lose one.
    Workflow.continueAsNew(new ProtectVmInput(vm, policyName,
        view.carry(policy, lastAppConsistentAt, pauseRequested, resyncRequested,
            requestedPolicy)));
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

  /**
   * Picks up a policy switch or an edited policy; the new settings apply from this cycle. A
   * policy the lookup refuses (unknown, or invalid after an edit) keeps the current settings:
   * protection must not end because of a configuration mistake.
   */
  private void refreshPolicy() {
    if (requestedPolicy != null) {
      String next = requestedPolicy;
      requestedPolicy = null;
      try {
        policy = policies.resolvePolicy(next);
        view.note("policy changed from " + policyName + " to " + next);
        policyName = next;
      } catch (ActivityFailure f) {
        view.note("policy change to '" + next + "' refused: " + messageOf(f));
      }
    } else if (longTermShortSteps) {
      try {
        policy = policies.resolvePolicy(policyName);
      } catch (ActivityFailure f) {
        view.note("policy '" + policyName + "' could not be read (" + messageOf(f)
            + "); keeping its previous settings");
      }
    } else {
      policy = policies.resolvePolicy(policyName);
    }
    view.policy(policyName, policy.rpoThreshold(), policy.copyFrequency());
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

  /**
   * After a failed cycle: asks the source whether a resync is due. One attempt: the loop's
   * back-off retries, and a probe retried for 25 minutes would hold off disable and pause.
   */
  private void checkSourceAfterFailure() {
    try {
      checkSource((longTermShortSteps ? probeAgents : agents).sourceHealth(plan));
    } catch (ActivityFailure unreachable) {
      // The source itself is what fails; the next cycle tries again.
    }
  }

  private void markResync(String reason) {
    Instant due = now();
    if (policy.resyncWindow() != null) {
      try {
        due = policy.resyncWindow().nextOpening(due);
      } catch (DateTimeException invalidWindow) {
        // The lookup refuses such a policy; one recorded before it did must not fail this
        // workflow task again and again: resync now rather than never.
        view.note("policy " + policyName + ": " + invalidWindow.getMessage()
            + "; resyncing without waiting for its window");
      }
    }
    view.resyncPending(reason, due);
    view.note("resync needed (" + reason + "); pending until " + due);
  }

  /** Waits for the resync window or an operator's resync; false if something else came first. */
  private boolean awaitResyncDue() {
    Duration wait = Duration.between(now(), view.resyncPendingUntil());
    if (!wait.isNegative() && !wait.isZero()) {
      awaitWatchingHealth(wait, () -> resyncRequested || disableRequested || failover != null
          || (stoppableCopies && pauseRequested));
    }
    return !disableRequested && failover == null && !(stoppableCopies && pauseRequested);
  }

  private void runResync() {
    resyncRequested = false;
    view.state(ProtectionState.RESYNCING);
    view.phase("RESYNC");
    long generation = step("beginning the resync", () -> agents.beginResync(plan));
    long compared = 0;
    long differing = 0;
    long sent = 0;
    for (DiskInfo disk : plan.disks()) {
      ResyncDiskRequest request = new ResyncDiskRequest(plan, disk.name(), disk.sizeBytes(),
          policy.transfer(), Workflow.getInfo().getWorkflowId());
      DiskResyncResult r = stoppableCopies ? resyncDiskUntilStopped(request)
          : longAgents.resyncDisk(request);
      compared += r.blocksCompared();
      differing += r.blocksDiffering();
      sent += r.bytesSent();
    }
    ReplicaPoint resynced = step("completing the resync", () -> agents.completeResync(plan));
    view.recordPoints(resynced);
    // The replica holds no point until the generation after the resync is applied: ship it now.
    AgentActivities shipper = longTermShortSteps ? finalSyncAgents : agents;
    view.recordCycle(step("shipping the generation after the resync",
        () -> shipper.replicateDelta(deltaRequest(false))));
    view.note("resync at generation " + generation + " done (" + view.resyncReason() + "): "
        + differing + " of " + compared + " blocks differed, " + sent
        + " bytes sent; " + (resynced.points().size() > 1 ? resynced.points().size()
            + " recovery points kept"
            : "recovery points older than the resync were dropped"));
    view.resyncDone();
    view.health(Health.NORMAL, List.of());
    view.state(ProtectionState.PROTECTED);
  }

  /** One disk's resync copy, stopped by a disable (protection ends) or a pause (resync waits). */
  private DiskResyncResult resyncDiskUntilStopped(ResyncDiskRequest request) {
    List<Promise<DiskResyncResult>> copy = new ArrayList<>(1);
    CancellationScope scope = Workflow.newCancellationScope(
        () -> { copy.add(Async.function(longAgents::resyncDisk, request)); });
    scope.run();
    Workflow.await(() -> copy.get(0).isCompleted() || disableRequested || pauseRequested);
    if (copy.get(0).isCompleted()) {
      return copy.get(0).get();
    }
    scope.cancel();
    if (disableRequested) {
      throw new DisableRequested();
    }
    throw new PausedDuringCopy();
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
    if (plan != null) {
      step("disabling replication", () -> {
        agents.disableReplication(plan);
        return null;
      }, false);
    }
    view.state(ProtectionState.DISABLED);
    view.clearPoints();
    return view.status(now());
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
  public void copyRetrying(CopyRetrying notice) {
    if (notice != null && view.state() == ProtectionState.INITIAL_REPLICATION) {
      view.health(Health.WARNING, List.of("initial copy of " + notice.disk()
          + " still failing after its retries (" + notice.message() + "); trying again at "
          + notice.retryAt()));
    }
  }

  @Override
  public void failover(FailoverNotice notice) {
    failover = notice;
  }

  @Override
  public ProtectionStatus status() {
    // A query's time is when it is read: the workflow's clock stops at its last task, so while it
    // waits (paused, CRITICAL, a retry's back-off) that clock alone would freeze the RPO. Reading
    // the wall clock is safe here (a query makes no commands). The later of the two: in
    // production the wall clock is ahead of the last task; in a virtual-time test the workflow's
    // clock runs ahead of the wall.
    return view.status(Instant.ofEpochMilli(
        Math.max(Workflow.currentTimeMillis(), System.currentTimeMillis())));
  }
}
