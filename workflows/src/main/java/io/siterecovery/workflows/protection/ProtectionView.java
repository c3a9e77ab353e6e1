package io.siterecovery.workflows.protection;

import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.PointInfo;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.common.LiveDetails;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.protection.CycleOutcome.Result;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import org.slf4j.Logger;

/**
 * What ProtectVm shows: state, health, points, progress and counters, kept in step with the
 * search attributes and with the current details the Web UI shows (every change sets them).
 * Lives in the workflow thread; the query reads it.
 *
 * <p>Health is the worst of: what the workflow's own errors set ({@link #health}: WARNING while
 * retrying, CRITICAL on a non-recoverable error), and WARNING when the RPO exceeds the policy's
 * threshold, when more than 20 % of the cycles due in the last hour were missed, or while a
 * resync is pending. The last three are worked out from the time they are read.
 */
final class ProtectionView {
  private static final Logger log = Workflow.getLogger(ProtectionView.class);
  private static final int MAX_NOTES = 10;
  private static final Duration MISSED_CYCLES_WINDOW = Duration.ofHours(1);
  /** WARNING when more than this share of the cycles due in the window were missed. */
  private static final double MISSED_CYCLES_LIMIT = 0.20;

  private String vm;
  private String policy;
  private ProtectionPlan plan;
  private Duration rpoThreshold;
  private Duration copyFrequency;
  private ProtectionState state = ProtectionState.ENABLING;
  private Health health = Health.NORMAL;
  private final List<String> healthReasons = new ArrayList<>();
  private RecoveryPoint latestPoint;
  private List<RecoveryPoint> points = List.of();
  private Progress progress;
  private final Map<String, CopyProgress> diskProgress = new LinkedHashMap<>();
  private Instant resyncPendingUntil;
  private String resyncReason;
  private final List<String> notes = new ArrayList<>();
  private long deltaCycles;
  private long failedCycles;
  private long bytesShipped;
  private Instant lastCycleAt;
  /** The cycles due in the last hour, oldest first; older ones are dropped as cycles are added. */
  private final Deque<CycleOutcome> cycleOutcomes = new ArrayDeque<>();
  /** When the next cycle is due at the policy's frequency; null until delta cycles start. */
  private Instant nextCycleDueAt;
  /**
   * Cycles start at a fixed rate: the next is due a period after the previous one started, or
   * when it ended if it ran longer. False in runs recorded before (ProtectVmWorkflowImpl reads
   * the version): due a period after the previous one ended.
   */
  private boolean fixedRateCycles;
  /** When the cycle under way started; null between cycles. */
  private Instant cycleRunningSince;
  /**
   * Runs recorded before the RPO and missed-cycle rules were upserted keep upserting only the
   * health the workflow's own errors set (ProtectVmWorkflowImpl reads the version).
   */
  private boolean upsertDerivedHealth;
  private Health upsertedHealth;

  void identify(String vm, String policy, Duration rpoThreshold, Duration copyFrequency,
      boolean upsertDerivedHealth, boolean fixedRateCycles) {
    this.vm = vm;
    this.policy = policy;
    this.rpoThreshold = rpoThreshold;
    this.copyFrequency = copyFrequency;
    this.upsertDerivedHealth = upsertDerivedHealth;
    this.fixedRateCycles = fixedRateCycles;
  }

  void plan(ProtectionPlan plan) {
    this.plan = plan;
    Workflow.upsertTypedSearchAttributes(
        SearchAttributeKeys.VM_NAME.valueSet(vm),
        SearchAttributeKeys.SOURCE_SITE.valueSet(plan.sourceSite()),
        SearchAttributeKeys.TARGET_SITE.valueSet(plan.targetSite()));
  }

  ProtectionState state() {
    return state;
  }

  void state(ProtectionState next) {
    if (next != ProtectionState.INITIAL_REPLICATION && next != ProtectionState.RESYNCING) {
      progress = null;
      diskProgress.clear();
    }
    state = next;
    Health shown = upsertDerivedHealth ? assess(now()).health() : health;
    upsertedHealth = shown;
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.PROTECTION_STATE.valueSet(next.name()),
        SearchAttributeKeys.REPLICATION_HEALTH.valueSet(shown.name()));
    showDetails();
  }

  /** Sets the health the workflow's own errors give; the derived rules are added to it. */
  void health(Health next, List<String> reasons) {
    boolean changed = next != health || !reasons.equals(healthReasons);
    health = next;
    healthReasons.clear();
    healthReasons.addAll(reasons);
    if (changed) {
      reasons.forEach(r -> log.warn("{}: {} {}", vm, next, r));
      if (upsertDerivedHealth) {
        refreshHealth(now());
      } else {
        Workflow.upsertTypedSearchAttributes(
            SearchAttributeKeys.REPLICATION_HEALTH.valueSet(next.name()));
      }
      showDetails();
    }
  }

  /** Upserts ReplicationHealth when the health as of {@code now} differs from the one shown. */
  void refreshHealth(Instant now) {
    if (!upsertDerivedHealth) {
      return;
    }
    Assessment a = assess(now);
    if (a.health() != upsertedHealth) {
      upsertedHealth = a.health();
      Workflow.upsertTypedSearchAttributes(
          SearchAttributeKeys.REPLICATION_HEALTH.valueSet(a.health().name()));
      note("health " + a.health() + (a.reasons().isEmpty() ? "" : ": " + a.reasons()));
    }
  }

  /**
   * The first instant after {@code now} at which the derived health changes with nothing else
   * happening (the RPO crossing the threshold, the missed-cycle rule flipping), or null: the
   * workflow's waits wake then to upsert it on time.
   */
  Instant nextHealthChange(Instant now) {
    Instant next = null;
    Instant crossing = rpoCrossing();
    if (crossing != null && crossing.isAfter(now)) {
      next = crossing;
    }
    if (nextCycleDueAt == null || !tracksCycles()) {
      return next;
    }
    boolean missing = tooManyMissed(now) != null;
    // The rule's inputs change only when a skipped cycle's period ends or an outcome ages out.
    TreeSet<Instant> candidates = new TreeSet<>();
    Instant horizon = now.plus(MISSED_CYCLES_WINDOW);
    for (Instant slotEnd = firstUnrecordedSlot(now).plus(copyFrequency); !slotEnd.isAfter(horizon)
        && candidates.size() < 4000; slotEnd = slotEnd.plus(copyFrequency)) {
      if (slotEnd.isAfter(now)) {
        candidates.add(slotEnd);
      }
    }
    cycleOutcomes.forEach(o -> candidates.add(o.dueAt().plus(MISSED_CYCLES_WINDOW).plusMillis(1)));
    for (Instant t : candidates.tailSet(now, false)) {
      if (next != null && !t.isBefore(next)) {
        break;
      }
      if ((tooManyMissed(t) != null) != missing) {
        return t;
      }
    }
    return next;
  }

  void note(String text) {
    notes.add(now() + " " + text);
    if (notes.size() > MAX_NOTES) {
      notes.remove(0);
    }
    log.info("{}: {}", vm, text);
    showDetails();
  }

  void phase(String phase) {
    progress = new Progress(phase, null, 0, plan.totalBytes(), 0, null);
    diskProgress.clear();
    showDetails();
  }

  void copyProgress(CopyProgress p) {
    diskProgress.put(p.disk(), p);
    long done = diskProgress.values().stream().mapToLong(CopyProgress::bytesDone).sum();
    long total = plan.totalBytes();
    Long eta = p.bytesPerSecond() > 0 ? (long) Math.ceil((total - done) / p.bytesPerSecond()) : null;
    progress = new Progress(p.phase(), p.disk(), done, total, p.bytesPerSecond(), eta);
    showDetails();
  }

  /** Per disk, the bytes the copy under way last reported done. */
  Map<String, Long> copiedBytes() {
    Map<String, Long> copied = new LinkedHashMap<>();
    diskProgress.forEach((disk, p) -> copied.put(disk, p.bytesDone()));
    return copied;
  }

  void recordCycle(ReplicationCycle cycle) {
    deltaCycles++;
    bytesShipped += cycle.bytesShipped();
    lastCycleAt = now();
    if (cycle.pointTime() != null) {
      latestPoint = RecoveryPoint.of(cycle.appliedGeneration(), cycle.pointTime(),
          cycle.appConsistent());
    }
    if (cycle.points() != null) {
      points(cycle.points());
    }
    showDetails();
  }

  void recordPoints(ReplicaPoint replica) {
    if (replica.pointTime() != null) {
      latestPoint = replica.points() == null ? null : replica.points().stream()
          .filter(p -> p.generation() == replica.appliedGeneration()).findFirst()
          .map(RecoveryPoint::of).orElse(RecoveryPoint.of(replica.appliedGeneration(),
              replica.pointTime(), false));
    }
    points(replica.points());
    showDetails();
  }

  private void points(List<PointInfo> retained) {
    points = retained == null ? List.of() : retained.stream().map(RecoveryPoint::of).toList();
  }

  void cycleFailed() {
    failedCycles++;
  }

  /** Delta cycles start: the first one is due a period from now. */
  void cyclesStart(Instant now) {
    if (nextCycleDueAt == null) {
      nextCycleDueAt = now.plus(copyFrequency);
    }
  }

  /** The time until the next cycle is due, zero when it is due already. */
  Duration untilNextCycle(Instant now) {
    return now.isBefore(nextCycleDueAt) ? Duration.between(now, nextCycleDueAt) : Duration.ZERO;
  }

  /** A cycle started at {@code startedAt} and is under way (the health rules account for it). */
  void cycleRunning(Instant startedAt) {
    cycleRunningSince = startedAt;
    showDetails();
  }

  /**
   * A cycle ran at {@code startedAt} and ended at {@code endedAt}. The due cycles whose whole
   * period passed before it started were skipped; this one answers the latest due one. The next
   * is due a period after it started, or at once if it ran longer than that: a slow cycle makes
   * the next one late, not missed (the RPO rule shows the lateness). Runs recorded before fixed
   * rate: a period after it ended.
   */
  void cycleOutcome(Instant startedAt, Instant endedAt, boolean succeeded) {
    cycleRunningSince = null;
    Instant slot = firstUnrecordedSlot(startedAt);
    while (!slot.plus(copyFrequency).isAfter(startedAt)) {
      cycleOutcomes.addLast(new CycleOutcome(slot, Result.SKIPPED));
      slot = slot.plus(copyFrequency);
    }
    cycleOutcomes.addLast(new CycleOutcome(startedAt, succeeded ? Result.RAN : Result.FAILED));
    Instant periodAfterStart = startedAt.plus(copyFrequency);
    nextCycleDueAt = !fixedRateCycles ? endedAt.plus(copyFrequency)
        : periodAfterStart.isAfter(endedAt) ? periodAfterStart : endedAt;
    Instant oldest = endedAt.minus(MISSED_CYCLES_WINDOW);
    while (!cycleOutcomes.isEmpty() && !cycleOutcomes.peekFirst().dueAt().isAfter(oldest)) {
      cycleOutcomes.removeFirst();
    }
    showDetails();
  }

  /** The first due cycle not yet recorded that can still count in the window ending at {@code at}. */
  private Instant firstUnrecordedSlot(Instant at) {
    Instant windowStart = at.minus(MISSED_CYCLES_WINDOW).minus(copyFrequency);
    if (!nextCycleDueAt.isBefore(windowStart)) {
      return nextCycleDueAt;
    }
    long periods = Duration.between(nextCycleDueAt, windowStart).toMillis()
        / copyFrequency.toMillis();
    return nextCycleDueAt.plus(copyFrequency.multipliedBy(periods));
  }

  /**
   * The missed-cycle rule as of {@code at}, null when it holds no warning. Due cycles in the last
   * hour: the recorded outcomes, plus the cycles due since the last one that had a whole period
   * to run and were not run (the workflow was waiting on something else). Missed: FAILED and
   * SKIPPED ones. A cycle under way is not missing the periods it takes: nothing is due while it
   * runs (the next one is due when it ends at the latest).
   */
  private String tooManyMissed(Instant at) {
    if (nextCycleDueAt == null || !tracksCycles()) {
      return null;
    }
    Instant oldest = at.minus(MISSED_CYCLES_WINDOW);
    long due = 0;
    long missed = 0;
    for (CycleOutcome o : cycleOutcomes) {
      if (o.dueAt().isAfter(oldest) && !o.dueAt().isAfter(at)) {
        due++;
        missed += o.result() == Result.RAN ? 0 : 1;
      }
    }
    Instant notRunUntil = cycleRunningSince != null && cycleRunningSince.isBefore(at)
        ? cycleRunningSince : at;
    for (Instant slot = firstUnrecordedSlot(at); !slot.plus(copyFrequency).isAfter(notRunUntil);
        slot = slot.plus(copyFrequency)) {
      if (slot.isAfter(oldest)) {
        due++;
        missed++;
      }
    }
    if (due == 0 || missed <= MISSED_CYCLES_LIMIT * due) {
      return null;
    }
    return missed + " of the " + due + " cycles due in the last hour were missed (more than "
        + Math.round(MISSED_CYCLES_LIMIT * 100) + " %)";
  }

  /** Cycles are due only while this direction is protected. */
  private boolean tracksCycles() {
    return state != ProtectionState.DISABLED && state != ProtectionState.FAILED_OVER;
  }

  /** The instant the RPO (whole seconds) first exceeds the threshold, or null. */
  private Instant rpoCrossing() {
    if (latestPoint == null || latestPoint.time() == null || rpoThreshold == null
        || !tracksCycles()) {
      return null;
    }
    return latestPoint.time().plusSeconds(rpoThreshold.toSeconds() + 1);
  }

  void resyncPending(String reason, Instant until) {
    resyncReason = reason;
    resyncPendingUntil = until;
    state(ProtectionState.RESYNC_PENDING);
  }

  boolean resyncPending() {
    return resyncReason != null;
  }

  Instant resyncPendingUntil() {
    return resyncPendingUntil;
  }

  String resyncReason() {
    return resyncReason;
  }

  void resyncDone() {
    resyncReason = null;
    resyncPendingUntil = null;
  }

  void policy(String name, Duration rpoThreshold, Duration copyFrequency) {
    this.policy = name;
    this.rpoThreshold = rpoThreshold;
    this.copyFrequency = copyFrequency;
  }

  void clearPoints() {
    latestPoint = null;
    points = List.of();
    showDetails();
  }

  /** What the previous run handed over; {@code lastAppConsistentAt} and requests are the caller's. */
  void restore(CarriedState c) {
    deltaCycles = c.deltaCycles();
    failedCycles = c.failedCycles();
    bytesShipped = c.bytesShipped();
    lastCycleAt = c.lastCycleAt();
    if (c.notes() != null) {
      notes.addAll(c.notes());
    }
    if (c.cycleOutcomes() != null) {
      cycleOutcomes.addAll(c.cycleOutcomes());
    }
    nextCycleDueAt = c.nextCycleDueAt();
    if (c.health() != null) {
      health = c.health();
      healthReasons.addAll(c.healthReasons() == null ? List.of() : c.healthReasons());
    }
    resyncReason = c.resyncReason();
    resyncPendingUntil = c.resyncPendingUntil();
  }

  CarriedState carry(PolicySettings policySettings, Instant lastAppConsistentAt,
      boolean pauseRequested, boolean resyncRequested, String requestedPolicy) {
    return new CarriedState(policySettings, lastAppConsistentAt, deltaCycles, failedCycles, bytesShipped,
        lastCycleAt, List.copyOf(notes), List.copyOf(cycleOutcomes), nextCycleDueAt, health,
        List.copyOf(healthReasons), resyncReason, resyncPendingUntil, pauseRequested,
        resyncRequested, requestedPolicy);
  }

  private static Instant now() {
    return Instant.ofEpochMilli(Workflow.currentTimeMillis());
  }

  /** Health, its reasons and the RPO as of {@code now}. */
  private record Assessment(Health health, List<String> reasons, Long rpoSeconds) {}

  private Assessment assess(Instant now) {
    Long rpo = null;
    List<String> reasons = new ArrayList<>(healthReasons);
    Health reported = health;
    if (latestPoint != null && latestPoint.time() != null && tracksCycles()) {
      rpo = Math.max(0, now.toEpochMilli() - latestPoint.time().toEpochMilli()) / 1000;
      if (rpoThreshold != null && rpo > rpoThreshold.toSeconds()) {
        reported = worst(reported, Health.WARNING);
        reasons.add("RPO " + rpo + " s exceeds the policy's " + rpoThreshold.toSeconds() + " s"
            + (cycleRunningSince == null ? "" : "; a cycle has been running for "
                + Math.max(0, Duration.between(cycleRunningSince, now).toSeconds()) + " s"));
      }
    }
    String missed = tooManyMissed(now);
    if (missed != null) {
      reported = worst(reported, Health.WARNING);
      reasons.add(missed);
    }
    if (resyncReason != null) {
      reported = worst(reported, Health.WARNING);
      reasons.add(state == ProtectionState.RESYNCING ? "resynchronising: " + resyncReason
          : "resync pending until " + resyncPendingUntil + ": " + resyncReason);
    }
    return new Assessment(reported, reasons, rpo);
  }

  private static Health worst(Health a, Health b) {
    return a.compareTo(b) >= 0 ? a : b;
  }

  /**
   * The Web UI's current details: the status as of now, and what the workflow does next (the
   * cycle under way or the next one due) and did last (the latest note).
   */
  private void showDetails() {
    ProtectionStatus s = status(now());
    String cycle = cycleRunningSince != null ? "delta cycle running since " + cycleRunningSince
        : s.state() == ProtectionState.PROTECTED && nextCycleDueAt != null
            ? "next delta cycle due at " + nextCycleDueAt : null;
    LiveDetails.of(s.state()).health(s.health(), s.healthReasons()).progress(s.progress())
        .rpo(s.rpoSeconds(), s.latestRecoveryPoint())
        .line("Route", plan == null ? null : plan.sourceSite() + " → " + plan.targetSite()
            + ", policy " + policy)
        .line("Cycle", cycle)
        .line("Cycles", deltaCycles + " done, " + failedCycles + " failed")
        .line("Last", notes.isEmpty() ? null : notes.get(notes.size() - 1))
        .show();
  }

  /** The status as of {@code now}: the query passes the time it is read at. */
  ProtectionStatus status(Instant now) {
    Assessment a = assess(now);
    return new ProtectionStatus(vm, policy, state, a.health(), a.reasons(),
        plan == null ? null : plan.sourceSite(), plan == null ? null : plan.targetSite(),
        a.rpoSeconds(), latestPoint, points, progress, resyncPendingUntil, resyncReason,
        List.copyOf(notes), deltaCycles, failedCycles, bytesShipped, lastCycleAt,
        tracksCycles() && state != ProtectionState.PAUSED ? nextCycleDueAt : null);
  }
}
