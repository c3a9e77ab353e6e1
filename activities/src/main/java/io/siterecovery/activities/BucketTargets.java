package io.siterecovery.activities;

import static io.siterecovery.activities.AgentActivitiesImpl.call;

import io.siterecovery.activities.AgentActivityRecords.CopyDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.DeltaRequest;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.activities.AgentActivityRecords.DiskResyncResult;
import io.siterecovery.activities.AgentActivityRecords.ResyncDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.ReverseOutcome;
import io.siterecovery.activities.AgentActivityRecords.PointInfo;
import io.siterecovery.activities.AgentActivityRecords.PromoteOutcome;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.AgentActivityRecords.TestCleanup;
import io.siterecovery.activities.AgentActivityRecords.TestVm;
import io.siterecovery.activities.AgentActivityRecords.TransferSettings;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.BucketMessages.BucketCycleResult;
import io.siterecovery.agent.api.BucketMessages.BucketInitialProgress;
import io.siterecovery.agent.api.BucketMessages.BucketPoint;
import io.siterecovery.agent.api.BucketMessages.BucketPoints;
import io.siterecovery.agent.api.BucketMessages.BucketResyncProgress;
import io.siterecovery.agent.api.BucketMessages.ObjectStoreInfo;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoverFromBucketRequest;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryInfo;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryProgress;
import io.siterecovery.agent.objectstore.ship.BucketShipper;
import io.siterecovery.agent.vm.VmRecord;
import io.temporal.activity.Activity;
import io.temporal.activity.ActivityExecutionContext;
import io.temporal.failure.ApplicationFailure;
import java.time.Duration;
import java.time.Instant;
import java.util.Comparator;
import java.util.List;
import java.util.function.BiConsumer;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent steps when one side of a replication is an object-store site: the source agent
 * ships to the bucket through its bucket routes, and the site's own agent (its recovery host)
 * lists the points and materialises VMs from them. A bucket's recovery points are its manifests:
 * their ids stand where a peer replica's applied generations do, so the workflows see the same
 * points, RPO and recovery-point choices for both kinds of target.
 */
final class BucketTargets {
  private static final Logger log = LoggerFactory.getLogger(BucketTargets.class);
  private static final String TEST_SUFFIX = "-test";
  /** How long a fetch with failed chunks may stand still before the commit names them. */
  static final Duration STALLED = Duration.ofSeconds(10);

  private final SiteDirectory sites;
  private final Function<String, AgentClient> agents;
  private final BiConsumer<String, CopyProgress> progress;

  BucketTargets(SiteDirectory sites, Function<String, AgentClient> agents,
      BiConsumer<String, CopyProgress> progress) {
    this.sites = sites;
    this.agents = agents;
    this.progress = progress;
  }

  /**
   * The source agent must ship to the same bucket the worker's configuration names: a site file
   * that points elsewhere would leave recovery points where no recovery host looks.
   */
  void checkSourceKnowsBucket(ProtectionPlan plan) {
    List<ObjectStoreInfo> known = call(() -> agents.apply(plan.sourceSite()).objectStores());
    ObjectStoreInfo info = known.stream().filter(i -> i.site().equals(plan.targetSite()))
        .findFirst().orElseThrow(() -> ApplicationFailure.newNonRetryableFailure("the agent of "
            + plan.sourceSite() + " is not configured for object-store site "
            + plan.targetSite() + " (start it with --object-store " + plan.targetSite()
            + "=FILE)", FailureTypes.UNKNOWN_SITE));
    SiteDirectory.ObjectStore expected = sites.objectStore(plan.targetSite()).orElseThrow();
    String mismatch = mismatch(expected, info);
    if (mismatch != null) {
      throw ApplicationFailure.newNonRetryableFailure("the agent of " + plan.sourceSite()
          + " ships object-store site " + plan.targetSite() + " to another bucket than this "
          + "worker's configuration names: " + mismatch, FailureTypes.UNKNOWN_SITE);
    }
  }

  private static String mismatch(SiteDirectory.ObjectStore expected, ObjectStoreInfo info) {
    if (expected.endpoint() != null && !trimSlash(expected.endpoint()).equals(
        trimSlash(info.endpoint()))) {
      return "endpoint " + info.endpoint() + ", configured " + expected.endpoint();
    }
    if (expected.bucket() != null && !expected.bucket().equals(info.bucket())) {
      return "bucket " + info.bucket() + ", configured " + expected.bucket();
    }
    if (expected.prefix() != null && !expected.prefix().equals(info.prefix())) {
      return "prefix '" + info.prefix() + "', configured '" + expected.prefix() + "'";
    }
    if (expected.keyId() != null && !expected.keyId().equals(info.keyId())) {
      return "key " + info.keyId() + ", configured " + expected.keyId();
    }
    return null;
  }

  private static String trimSlash(String s) {
    return s.endsWith("/") ? s.substring(0, s.length() - 1) : s;
  }

  /**
   * The first, shortest step: it protects the VM towards the bucket and starts tracking. A VM
   * back from a failover to this site (its protection towards it not complete, its points still in
   * the bucket) takes those points up again instead, a resync required: the source agent refuses
   * points of another VM or disks.
   */
  boolean enable(ProtectionPlan plan) {
    checkSourceKnowsBucket(plan);
    AgentClient source = agents.apply(plan.sourceSite());
    VmRecord r = call(() -> source.getVm(plan.vm()));
    if (r.protection() != null && r.protection().targetSite().equals(plan.targetSite())
        && !r.protection().initialComplete()
        && !call(() -> agents.apply(plan.targetSite()).bucketSitePoints(plan.targetSite(),
            plan.vm())).points().isEmpty()) {
      var taken = call(() -> source.bucketReattach(plan.vm(), plan.targetSite()));
      if (taken.reattached()) {
        log.info("[{}] back from {}: its protection takes up its {} points in the bucket again",
            plan.vm(), plan.targetSite(), taken.points());
        return true;
      }
    }
    return step(plan, Duration.ofMillis(1), null).finished();
  }

  /** The first step of a resync towards the bucket: it seals the logs; its generation. */
  long beginResync(ProtectionPlan plan) {
    return call(() -> agents.apply(plan.sourceSite()).bucketResync(plan.vm(), plan.targetSite(),
        Duration.ofMillis(1), null)).generation();
  }

  /**
   * Resync steps until this disk's chunks are compared (the agent goes through the disks in
   * order, in bounded steps it resumes by itself); the last disk's call also waits for the
   * commit. Blocks are the bucket's chunks here, all of them counted in the last disk's result.
   */
  DiskResyncResult resyncDisk(ResyncDiskRequest request) {
    ActivityExecutionContext ctx = Activity.getExecutionContext();
    ProtectionPlan plan = request.plan();
    long diskStart = diskStart(plan, request.disk());
    boolean lastDisk = isLastDisk(plan, request.disk());
    long size = request.sizeBytes();
    long total = plan.totalBytes();
    Double bandwidth = request.transfer() == null ? null : request.transfer().bandwidthMBps();
    long started = System.nanoTime();
    long resumedFrom = ctx.getHeartbeatDetails(Long.class).orElse(0L);
    ProgressGate gate = new ProgressGate(size, resumedFrom, started);
    BucketResyncProgress p;
    long sent = 0;
    while (true) {
      p = call(() -> agents.apply(plan.sourceSite()).bucketResync(plan.vm(), plan.targetSite(),
          AgentActivitiesImpl.COPY_CALL_BUDGET, bandwidth));
      sent += p.bytesSent();
      long vmDone = total == 0 || p.totalChunks() == 0 ? total
          : (long) ((double) p.doneChunks() / p.totalChunks() * total);
      long done = Math.max(0, Math.min(size, vmDone - diskStart));
      long now = System.nanoTime();
      ctx.heartbeat(done);
      if (gate.shouldReport(done, now)) {
        double seconds = Math.max(1e-3, (now - started) / 1e9);
        progress.accept(request.progressWorkflowId(), new CopyProgress("RESYNC", request.disk(),
            done, size, sent, Math.max(0, done - resumedFrom) / seconds, Instant.now()));
      }
      if (p.finished() || (!lastDisk && done >= size)) {
        break;
      }
    }
    // The agent counts the whole resync, not a disk's share: the last disk reports it.
    return new DiskResyncResult(request.disk(), lastDisk ? p.totalChunks() : 0,
        lastDisk ? p.differingChunks() : 0, sent, (System.nanoTime() - started) / 1_000_000);
  }

  /** The resync's point, committed by its last step (asked again here: it answers the same). */
  ReplicaPoint completeResync(ProtectionPlan plan) {
    BucketResyncProgress p = call(() -> agents.apply(plan.sourceSite()).bucketResync(plan.vm(),
        plan.targetSite(), AgentActivitiesImpl.COPY_CALL_BUDGET, null));
    if (!p.finished()) {
      throw ApplicationFailure.newFailure("the resync of " + plan.vm() + " towards "
          + plan.targetSite() + " is not finished: " + p.doneChunks() + " of "
          + p.totalChunks() + " chunks compared", FailureTypes.REPLICA_BEHIND);
    }
    return replicaPoint(plan.targetSite(), plan.vm());
  }

  /**
   * Reverse replication towards an object-store site: its bucket is the replica, not the copy
   * its recovery host ran until the failback, which goes; the bucket's points are compared with
   * the disks (a resync), so only what changed travels.
   */
  ReverseOutcome reverseOldSource(String site, String vm) {
    AgentClient host = agents.apply(site);
    boolean fencedCopy = call(() -> host.listVms()).stream().anyMatch(v -> v.name().equals(vm)
        && v.role() == VmRecord.Role.FAILED_OVER);
    if (fencedCopy) {
      call(() -> {
        host.deleteFencedVm(vm);
        return null;
      });
      log.info("[{}] the copy its failover left fenced on {} is deleted: the bucket is the "
          + "replica", vm, site);
    }
    return new ReverseOutcome(null, "the bucket holds the VM's points from before: they are "
        + "compared with the disks chunk by chunk", "the bucket of " + site
        + (fencedCopy ? " (the copy its host ran until the failback is deleted)" : ""));
  }

  private static long diskStart(ProtectionPlan plan, String disk) {
    long start = 0;
    for (ProtectionPlan.DiskInfo d : plan.disks()) {
      if (d.name().equals(disk)) {
        break;
      }
      start += d.sizeBytes();
    }
    return start;
  }

  private static boolean isLastDisk(ProtectionPlan plan, String disk) {
    return plan.disks().get(plan.disks().size() - 1).name().equals(disk);
  }

  private BucketInitialProgress step(ProtectionPlan plan, Duration budget, Double bandwidth) {
    return call(() -> agents.apply(plan.sourceSite()).bucketInitial(plan.vm(), plan.targetSite(),
        budget, bandwidth));
  }

  /**
   * The agent copies a VM's disks to the bucket in chunk order, disk after disk, in bounded
   * steps it resumes by itself; this disk's share is what its progress reports. The last disk's
   * copy also waits for the first recovery point, which the agent commits once every chunk is in.
   */
  DiskCopyResult copyDisk(CopyDiskRequest request) {
    ActivityExecutionContext ctx = Activity.getExecutionContext();
    ProtectionPlan plan = request.plan();
    long diskStart = diskStart(plan, request.disk());
    boolean lastDisk = isLastDisk(plan, request.disk());
    long size = request.sizeBytes();
    Double bandwidth = request.transfer() == null ? null : request.transfer().bandwidthMBps();
    // What an earlier attempt or a stopped copy reported; the agent's checkpoint knows the rest.
    long resumedFrom = ctx.getHeartbeatDetails(Long.class)
        .orElse(request.startOffset() == null ? 0L : request.startOffset());
    long started = System.nanoTime();
    long done = resumedFrom;
    long sent = 0;
    ProgressGate gate = new ProgressGate(size, resumedFrom, started);
    while (true) {
      BucketInitialProgress p = step(plan, AgentActivitiesImpl.COPY_CALL_BUDGET, bandwidth);
      done = Math.max(0, Math.min(size, p.doneBytes() - diskStart));
      sent += p.bytesSent();
      long now = System.nanoTime();
      ctx.heartbeat(done);
      if (gate.shouldReport(done, now)) {
        double seconds = Math.max(1e-3, (now - started) / 1e9);
        progress.accept(request.progressWorkflowId(), new CopyProgress("INITIAL_REPLICATION",
            request.disk(), done, size, sent, Math.max(0, done - resumedFrom) / seconds,
            Instant.now()));
      }
      if (p.finished() || (!lastDisk && done >= size)) {
        break;
      }
    }
    return new DiskCopyResult(request.disk(), Math.max(0, done - resumedFrom), sent, resumedFrom,
        (System.nanoTime() - started) / 1_000_000);
  }

  /** Point 1 is committed by the copy's last step; a step after it answers at once. */
  void completeInitialReplication(ProtectionPlan plan) {
    BucketInitialProgress p = step(plan, AgentActivitiesImpl.COPY_CALL_BUDGET, null);
    if (!p.finished()) {
      throw ApplicationFailure.newFailure("the initial copy of " + plan.vm() + " to "
          + plan.targetSite() + " is not finished: " + p.doneChunks() + " of " + p.totalChunks()
          + " chunks in the bucket", FailureTypes.REPLICA_BEHIND);
    }
  }

  /**
   * One cycle to the bucket (seal, ship, commit a point), then retention: points older than the
   * policy's retention go, the newest always stays. With {@code quiesce} the source runs the
   * VM's quiesce hook before it seals, as for a peer, and the point is app-consistent if it
   * succeeded.
   */
  ReplicationCycle replicateDelta(DeltaRequest request, SourceHealth health) {
    ProtectionPlan plan = request.plan();
    AgentClient source = agents.apply(plan.sourceSite());
    TransferSettings t = request.transfer();
    BucketCycleResult r = call(() -> source.bucketCycle(plan.vm(), plan.targetSite(),
        t == null ? null : t.bandwidthMBps(), request.quiesce()));
    List<BucketPoint> points = call(() -> source.bucketPoints(plan.vm(), plan.targetSite()))
        .points();
    if (request.retentionSeconds() != null) {
      long oldest = System.currentTimeMillis() - request.retentionSeconds() * 1000;
      List<Long> keep = points.stream().filter(p -> p.createdMillis() >= oldest
          || p.pointId() == r.pointId()).map(BucketPoint::pointId).toList();
      if (keep.size() < points.size()) {
        var pruned = call(() -> source.bucketPrune(plan.vm(), plan.targetSite(), keep));
        log.info("[{}] retention on {}: points {} dropped, {} objects deleted", plan.vm(),
            plan.targetSite(), pruned.droppedPoints(), pruned.objectsDeleted());
        points = points.stream().filter(p -> keep.contains(p.pointId())).toList();
      }
    }
    BucketPoint latest = points.stream().filter(p -> p.pointId() == r.pointId()).findFirst()
        .orElseThrow(() -> ApplicationFailure.newFailure("point " + r.pointId() + " of "
            + plan.vm() + " is not listed in the bucket of " + plan.targetSite(),
            ErrorCode.INVALID_STATE.name()));
    return new ReplicationCycle(r.pointId(), r.pointId(), Instant.ofEpochMilli(
        latest.createdMillis()), r.logsShipped(), r.bytesShipped(), r.appConsistent(),
        r.quiesceMessage(), pointInfos(points), health);
  }

  private static List<PointInfo> pointInfos(List<BucketPoint> points) {
    return points.stream().sorted(Comparator.comparingLong(BucketPoint::pointId))
        .map(p -> new PointInfo(p.pointId(), Instant.ofEpochMilli(p.createdMillis()),
            p.appConsistent()))
        .toList();
  }

  /** Read from the bucket by the site's recovery host: the source may be the site that is lost. */
  ReplicaPoint replicaPoint(String site, String vm) {
    BucketPoints listed = call(() -> agents.apply(site).bucketSitePoints(site, vm));
    List<PointInfo> points = pointInfos(listed.points());
    if (points.isEmpty()) {
      throw ApplicationFailure.newNonRetryableFailure("the bucket of " + site + " holds no "
          + "recovery point of VM " + vm, FailureTypes.NOT_PROTECTED);
    }
    PointInfo latest = points.get(points.size() - 1);
    return new ReplicaPoint(latest.generation(), latest.time(), true, points);
  }

  private static RecoverFromBucketRequest recovery(String site, String vm, long point,
      boolean test) {
    return new RecoverFromBucketRequest(site, BucketShipper.bucketVmId(vm), point, test);
  }

  /** The VM made from the bucket at {@code point}, its disks exported at once (instant recovery). */
  void startReplica(String site, String vm, long point) {
    RecoveryInfo info = call(() -> agents.apply(site).recoverFromBucket(vm,
        recovery(site, vm, point, false)));
    log.info("[{}] recovered from the bucket of {} at point {}: {}", vm, site, info.point(),
        info.exports());
  }

  /** Drops the recovered VM and its local data; the bucket is untouched. Idempotent. */
  void stopReplica(String site, String vm) {
    discard(site, vm);
  }

  private boolean discard(String site, String name) {
    try {
      agents.apply(site).discardBucketRecovery(name);
      return true;
    } catch (AgentException e) {
      if (e.code() == ErrorCode.VM_NOT_FOUND) {
        return false;
      }
      throw AgentActivitiesImpl.failure(e);
    }
  }

  TestVm createTestVm(String site, String vm, long point, String key) {
    RecoveryInfo info = call(() -> agents.apply(site).recoverFromBucket(vm,
        recovery(site, vm, point, true)));
    return testVm(site, vm, info, key);
  }

  private TestVm testVm(String site, String vm, RecoveryInfo info, String key) {
    Instant pointTime = replicaPoint(site, vm).points().stream()
        .filter(p -> p.generation() == info.point()).map(PointInfo::time).findFirst()
        .orElse(info.createdAt());
    return new TestVm(vm, info.vm(), info.point(), pointTime, key, info.createdAt(),
        info.exports());
  }

  TestVm findTestVm(String site, String vm) {
    return call(() -> agents.apply(site).bucketRecoveries()).stream()
        .filter(r -> r.vm().equals(vm + TEST_SUFFIX)).findFirst()
        .map(r -> testVm(site, vm, r, null)).orElse(null);
  }

  TestCleanup deleteTestVm(String site, String vm) {
    String testVm = vm + TEST_SUFFIX;
    boolean existed = discard(site, testVm);
    List<String> remaining = call(() -> agents.apply(site).bucketRecoveries()).stream()
        .filter(r -> r.vm().equals(testVm)).map(r -> r.vm() + " " + r.exports()).toList();
    return new TestCleanup(testVm, existed, remaining);
  }

  /**
   * Commit: once the recovered disks are wholly local, the recovery host makes the VM one of its
   * own, primary and tracked, replicating (once reprotected) back towards its old source. Waits
   * here for the background fetch, heartbeating what is local (the step's timeout is hours); a
   * fetch that stands still with failed chunks goes on to the commit, which tries them once more
   * and names those that still fail.
   */
  PromoteOutcome promote(ProtectionPlan plan) {
    AgentClient host = agents.apply(plan.targetSite());
    ActivityExecutionContext ctx = Activity.getExecutionContext();
    boolean adopted = call(() -> host.listVms()).stream().anyMatch(v -> v.name()
        .equals(plan.vm()) && v.role() == VmRecord.Role.PRIMARY);
    long lastLocal = -1;
    long movedAt = System.nanoTime();
    ProgressGate gate = null;
    String failover = ctx.getInfo().getWorkflowId();
    while (!adopted) {
      RecoveryProgress p = call(() -> host.recoveryProgress(plan.vm()));
      if (p.complete()) {
        break;
      }
      long now = System.nanoTime();
      if (gate == null) {
        gate = new ProgressGate(p.totalBytes(), p.localBytes(), now);
      }
      if (gate.shouldReport(p.localBytes(), now)) {
        progress.accept(failover, new CopyProgress("DOWNLOADING_DISKS", "all disks",
            p.localBytes(), p.totalBytes(), p.downloadedBytes(),
            p.downloadMiBPerSecond() * (1 << 20), Instant.now()));
        log.info("[{}] commit waits for its disks on {}: {} of {} bytes local ({} MiB/s)",
            plan.vm(), plan.targetSite(), p.localBytes(), p.totalBytes(),
            String.format("%.1f", p.downloadMiBPerSecond()));
      }
      if (p.localBytes() != lastLocal) {
        lastLocal = p.localBytes();
        movedAt = now;
      } else if (p.disks().stream().anyMatch(d -> !d.failedChunks().isEmpty())
          && System.nanoTime() - movedAt > STALLED.toNanos()) {
        break;
      }
      ctx.heartbeat(p.localBytes());
      try {
        Thread.sleep(500); // the agent offers no wait; a poll every half second is cheap
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw ApplicationFailure.newFailure("interrupted", "INTERRUPTED");
      }
    }
    String home = homeOf(plan);
    return new PromoteOutcome(call(() -> host.promoteBucketRecovery(plan.vm(),
        plan.sourceSite(), home)).changedBytes());
  }

  /** The VM's home as its old source records it; that site itself when it does not answer. */
  private String homeOf(ProtectionPlan plan) {
    try {
      VmRecord r = agents.apply(plan.sourceSite()).getVm(plan.vm());
      return r.home() == null ? plan.sourceSite() : r.home();
    } catch (AgentException e) {
      log.info("[{}] home of the VM not read from {} ({}); taken to be that site", plan.vm(),
          plan.sourceSite(), e.getMessage());
      return plan.sourceSite();
    }
  }
}
