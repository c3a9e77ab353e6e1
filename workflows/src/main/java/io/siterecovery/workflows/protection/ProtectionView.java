package io.siterecovery.workflows.protection;

import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.PointInfo;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;

/**
 * What ProtectVm shows: state, health, points, progress and counters, kept in step with the
 * search attributes. Lives in the workflow thread; the query reads it.
 */
final class ProtectionView {
  private static final Logger log = Workflow.getLogger(ProtectionView.class);
  private static final int MAX_NOTES = 10;

  private String vm;
  private String policy;
  private ProtectionPlan plan;
  private Duration rpoThreshold;
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

  void identify(String vm, String policy, Duration rpoThreshold) {
    this.vm = vm;
    this.policy = policy;
    this.rpoThreshold = rpoThreshold;
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
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.PROTECTION_STATE.valueSet(next.name()),
        SearchAttributeKeys.REPLICATION_HEALTH.valueSet(health.name()));
  }

  void health(Health next, List<String> reasons) {
    boolean changed = next != health || !reasons.equals(healthReasons);
    health = next;
    healthReasons.clear();
    healthReasons.addAll(reasons);
    if (changed) {
      Workflow.upsertTypedSearchAttributes(
          SearchAttributeKeys.REPLICATION_HEALTH.valueSet(next.name()));
      reasons.forEach(r -> log.warn("{}: {} {}", vm, next, r));
    }
  }

  void note(String text) {
    notes.add(now() + " " + text);
    if (notes.size() > MAX_NOTES) {
      notes.remove(0);
    }
    log.info("{}: {}", vm, text);
  }

  void phase(String phase) {
    progress = new Progress(phase, null, 0, plan.totalBytes(), 0, null);
    diskProgress.clear();
  }

  void copyProgress(CopyProgress p) {
    diskProgress.put(p.disk(), p);
    long done = diskProgress.values().stream().mapToLong(CopyProgress::bytesDone).sum();
    long total = plan.totalBytes();
    Long eta = p.bytesPerSecond() > 0 ? (long) Math.ceil((total - done) / p.bytesPerSecond()) : null;
    progress = new Progress(p.phase(), p.disk(), done, total, p.bytesPerSecond(), eta);
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
  }

  void recordPoints(ReplicaPoint replica) {
    if (replica.pointTime() != null) {
      latestPoint = replica.points() == null ? null : replica.points().stream()
          .filter(p -> p.generation() == replica.appliedGeneration()).findFirst()
          .map(RecoveryPoint::of).orElse(RecoveryPoint.of(replica.appliedGeneration(),
              replica.pointTime(), false));
    }
    points(replica.points());
  }

  private void points(List<PointInfo> retained) {
    points = retained == null ? List.of() : retained.stream().map(RecoveryPoint::of).toList();
  }

  void cycleFailed() {
    failedCycles++;
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

  void policy(String name, Duration rpoThreshold) {
    this.policy = name;
    this.rpoThreshold = rpoThreshold;
  }

  void clearPoints() {
    latestPoint = null;
    points = List.of();
  }

  private static Instant now() {
    return Instant.ofEpochMilli(Workflow.currentTimeMillis());
  }

  ProtectionStatus status() {
    Long rpo = null;
    List<String> reasons = new ArrayList<>(healthReasons);
    Health reported = health;
    if (latestPoint != null && latestPoint.time() != null && state != ProtectionState.FAILED_OVER
        && state != ProtectionState.DISABLED) {
      rpo = Math.max(0, (Workflow.currentTimeMillis() - latestPoint.time().toEpochMilli()) / 1000);
      if (rpoThreshold != null && rpo > rpoThreshold.toSeconds() && reported == Health.NORMAL) {
        reported = Health.WARNING;
        reasons.add("RPO " + rpo + " s exceeds the policy's " + rpoThreshold.toSeconds() + " s");
      }
    }
    if (resyncReason != null) {
      reported = reported == Health.NORMAL ? Health.WARNING : reported;
      reasons.add(state == ProtectionState.RESYNCING ? "resynchronising: " + resyncReason
          : "resync pending until " + resyncPendingUntil + ": " + resyncReason);
    }
    return new ProtectionStatus(vm, policy, state, reported, reasons,
        plan == null ? null : plan.sourceSite(), plan == null ? null : plan.targetSite(), rpo,
        latestPoint, points, progress, resyncPendingUntil, resyncReason, List.copyOf(notes),
        deltaCycles, failedCycles, bytesShipped, lastCycleAt);
  }
}
