package io.siterecovery.activities;

import io.siterecovery.activities.AgentActivityRecords.CopyDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.DeltaRequest;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.activities.AgentActivityRecords.DiskResyncResult;
import io.siterecovery.activities.AgentActivityRecords.PointInfo;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.ResyncDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.PromoteOutcome;
import io.siterecovery.activities.AgentActivityRecords.ReprotectPlan;
import io.siterecovery.activities.AgentActivityRecords.ReverseOutcome;
import io.siterecovery.activities.AgentActivityRecords.Salvaged;
import io.siterecovery.activities.AgentActivityRecords.SeedResult;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.AgentActivityRecords.TestCleanup;
import io.siterecovery.activities.AgentActivityRecords.TestVm;
import io.siterecovery.activities.AgentActivityRecords.TransferSettings;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.CopyRangeResult;
import io.siterecovery.agent.api.AgentMessages.ReplicateRequest;
import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.api.AgentMessages.ResyncStepRequest;
import io.siterecovery.agent.api.AgentMessages.ResyncStepResult;
import io.siterecovery.agent.api.AgentMessages.ReverseResult;
import io.siterecovery.agent.api.AgentMessages.SalvageInfo;
import io.siterecovery.agent.api.AgentMessages.ScriptRunRequest;
import io.siterecovery.agent.api.AgentMessages.ScriptRunResult;
import io.siterecovery.agent.api.AgentMessages.SendChangedResult;
import io.siterecovery.agent.api.AgentMessages.SourceStatus;
import io.siterecovery.agent.api.AgentMessages.TestCleanupReport;
import io.siterecovery.agent.api.AgentMessages.TestCloneInfo;
import io.siterecovery.agent.api.AgentMessages.TransferOptions;
import io.siterecovery.agent.api.BucketMessages.BucketPoints;
import io.siterecovery.agent.vm.VmRecord;
import io.temporal.activity.Activity;
import io.temporal.activity.ActivityExecutionContext;
import io.temporal.failure.ApplicationFailure;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Thin calls to the agents; bytes never pass through here. */
public class AgentActivitiesImpl implements AgentActivities {
  private static final Logger log = LoggerFactory.getLogger(AgentActivitiesImpl.class);
  private static final Duration HEARTBEAT_EVERY = Duration.ofSeconds(3);
  private static final ScheduledExecutorService HEARTBEATS =
      Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "delta-heartbeats");
        t.setDaemon(true);
        return t;
      });
  /**
   * One agent call copies at most this much, and for at most {@link #COPY_CALL_BUDGET} (the agent
   * stops at a frame boundary and says where); the heartbeat after it is the resume point.
   */
  static final long COPY_SLICE = 256L << 20;
  /**
   * Heartbeats come after every agent call, so a call must end well within the heartbeat timeout
   * whatever the bandwidth (at 1 MB/s a 256 MiB slice took 4 minutes). About 3 s, plus the frame
   * in flight, also bounds what a retry after a crash sends again (see AgentSteps.diskCopy).
   */
  static final Duration COPY_CALL_BUDGET = Duration.ofSeconds(3);
  /** Resync compares blocks of this size; how many per agent call: {@link ResyncStepSizer}. */
  static final int RESYNC_BLOCK_SIZE = 64 << 10;

  private final SiteDirectory sites;
  private final ProgressReporter progress;
  private final BucketTargets buckets;

  /** Sends copy progress to the workflow that shows it (a signal in production). */
  @FunctionalInterface
  public interface ProgressReporter {
    void report(String workflowId, CopyProgress progress);
  }

  public AgentActivitiesImpl(SiteDirectory sites, ProgressReporter progress) {
    this.sites = sites;
    this.progress = progress;
    this.buckets = new BucketTargets(sites, this::agent, this::reportProgress);
  }

  private boolean toBucket(ProtectionPlan plan) {
    return sites.isObjectStore(plan.targetSite());
  }

  private AgentClient agent(String site) {
    return sites.agent(site).orElseThrow(() -> ApplicationFailure.newNonRetryableFailure(
        "no agent configured for site " + site, FailureTypes.UNKNOWN_SITE));
  }

  @Override
  public ProtectionPlan planProtection(String vm) {
    return planProtection(vm, null);
  }

  @Override
  public ProtectionPlan planProtectionTo(String vm, String targetSite) {
    return planProtection(vm, targetSite);
  }

  private ProtectionPlan planProtection(String vm, String wanted) {
    List<String> seen = new ArrayList<>();
    for (String site : sites.sites()) {
      VmRecord record = call(() -> agent(site).listVms()).stream()
          .filter(r -> r.name().equals(vm)).findFirst().orElse(null);
      if (record == null) {
        continue;
      }
      seen.add(site + " (" + record.role() + ")");
      if (record.role() == VmRecord.Role.PRIMARY) {
        // A VM that failed over replicates back to where it came from, whatever the partners.
        String current = record.protection() != null ? record.protection().targetSite() : null;
        if (wanted != null && current != null && !wanted.equals(current)) {
          throw ApplicationFailure.newNonRetryableFailure("VM " + vm + " replicates to " + current
              + " already; disable its protection before protecting it to " + wanted,
              FailureTypes.UNKNOWN_SITE);
        }
        if (wanted != null && wanted.equals(site)) {
          throw ApplicationFailure.newNonRetryableFailure("VM " + vm + " runs on " + site
              + ": it cannot replicate to its own site", FailureTypes.UNKNOWN_SITE);
        }
        String target = current != null ? current : wanted != null ? wanted
            : sites.partnerOf(site).orElseThrow(() ->
                ApplicationFailure.newNonRetryableFailure("site " + site
                    + " has no replication partner configured", FailureTypes.UNKNOWN_SITE));
        agent(target);
        return toPlan(record, site, target);
      }
    }
    if (seen.isEmpty()) {
      throw notFoundOnAnySite(vm);
    }
    throw ApplicationFailure.newNonRetryableFailure("VM " + vm + " has no primary copy; found on "
        + seen, "VM_NOT_FOUND");
  }

  /** A name no site knows: said as such, not as a VM in the wrong state. */
  private ApplicationFailure notFoundOnAnySite(String vm) {
    return ApplicationFailure.newNonRetryableFailure("VM " + vm + " not found on any site ("
        + String.join(", ", new java.util.TreeSet<>(sites.agentUrls().keySet())) + ")",
        "VM_NOT_FOUND");
  }

  @Override
  public ProtectionPlan describeProtection(String vm) {
    boolean seen = false;
    List<String> unreachable = new ArrayList<>();
    Map<String, VmRecord> found = new LinkedHashMap<>();
    for (String site : sites.sites()) {
      List<VmRecord> listed;
      try {
        listed = agent(site).listVms();
      } catch (AgentException e) {
        if (e.code() != ErrorCode.PEER_UNREACHABLE) {
          throw failure(e);
        }
        unreachable.add(site);
        continue;
      }
      VmRecord record = listed.stream().filter(r -> r.name().equals(vm)).findFirst()
          .orElse(null);
      if (record != null) {
        seen = true;
        found.put(site, record);
      }
      if (record != null && record.protection() != null) {
        if (!record.protection().initialComplete()) {
          throw ApplicationFailure.newNonRetryableFailure("VM " + vm
              + " has not finished initial replication", FailureTypes.NOT_PROTECTED);
        }
        return toPlan(record, site, record.protection().targetSite());
      }
    }
    if (!unreachable.isEmpty()) {
      ProtectionPlan fromTheTarget = planFromTheTarget(vm, unreachable, found);
      if (fromTheTarget != null) {
        return fromTheTarget;
      }
      throw ApplicationFailure.newFailure("VM " + vm + " was found protected on no site that "
          + "answers; " + unreachable + " did not answer", ErrorCode.PEER_UNREACHABLE.name());
    }
    if (!seen) {
      throw notFoundOnAnySite(vm);
    }
    throw ApplicationFailure.newNonRetryableFailure("VM " + vm + " is not protected on any site",
        FailureTypes.NOT_PROTECTED);
  }

  /**
   * The source of an unplanned failover is often the site that is lost: the replica still
   * knows the VM and where it came from, and a bucket knows the VM's points (its source is then
   * the one site that did not answer). {@code found}: the VM's copy on each site that answered.
   * Null when neither does.
   */
  private ProtectionPlan planFromTheTarget(String vm, List<String> unreachable,
      Map<String, VmRecord> found) {
    for (String site : sites.sites()) {
      if (unreachable.contains(site)) {
        continue;
      }
      if (sites.isObjectStore(site)) {
        BucketPoints listed = call(() -> agent(site).bucketSitePoints(site, vm));
        if (listed.points().isEmpty()) {
          continue;
        }
        if (unreachable.size() > 1) {
          throw ApplicationFailure.newFailure("VM " + vm + " has points in the bucket of " + site
              + " but its source is not known: " + unreachable + " did not answer",
              ErrorCode.PEER_UNREACHABLE.name());
        }
        log.warn("[{}] source site {} does not answer; {} holds the VM's recovery points", vm,
            unreachable.get(0), site);
        // the disks as a VM recovered from the latest point has them (a plan lists its exports)
        return new ProtectionPlan(vm, unreachable.get(0), site, listed.disks().stream()
            .map(d -> new ProtectionPlan.DiskInfo(d.name(), d.sizeBytes())).toList());
      }
      VmRecord replica = found.get(site);
      if (replica != null && replica.replica() != null
          && unreachable.contains(replica.replica().sourceSite())) {
        log.warn("[{}] source site {} does not answer; its replica on {} stands for it", vm,
            replica.replica().sourceSite(), site);
        return toPlan(replica, replica.replica().sourceSite(), site);
      }
    }
    return null;
  }

  private static ProtectionPlan toPlan(VmRecord r, String source, String target) {
    return new ProtectionPlan(r.name(), source, target, r.disks().stream()
        .map(d -> new ProtectionPlan.DiskInfo(d.name(), d.sizeBytes())).toList());
  }

  @Override
  public boolean enableReplication(ProtectionPlan plan) {
    if (toBucket(plan)) {
      return buckets.enable(plan);
    }
    return call(() -> agent(plan.sourceSite()).enableProtection(plan.vm(), plan.targetSite()))
        .initialComplete();
  }

  @Override
  public DiskCopyResult copyDisk(CopyDiskRequest request) {
    if (toBucket(request.plan())) {
      return buckets.copyDisk(request);
    }
    ActivityExecutionContext ctx = Activity.getExecutionContext();
    // A retry resumes from its heartbeat; a copy started again after a pause from what the
    // stopped one reported (writes behind either are tracked since enable and shipped after).
    long resumeFrom = ctx.getHeartbeatDetails(Long.class)
        .orElse(request.startOffset() == null ? 0L : request.startOffset());
    AgentClient source = agent(request.plan().sourceSite());
    long size = request.sizeBytes();
    long offset = resumeFrom;
    long read = 0;
    long sent = 0;
    long started = System.nanoTime();
    ProgressGate gate = new ProgressGate(size, resumeFrom, started);
    if (resumeFrom > 0) {
      log.info("resuming copy of {}/{} at byte {} (attempt {})", request.plan().vm(),
          request.disk(), resumeFrom, ctx.getInfo().getAttempt());
    }
    while (offset < size) {
      long at = offset;
      CopyRangeResult r = call(() -> source.copyRange(request.plan().vm(), request.disk(), at,
          Math.min(COPY_SLICE, size - at), options(request.transfer()), COPY_CALL_BUDGET));
      offset = r.nextOffset();
      read += r.bytesRead();
      sent += r.bytesSent();
      ctx.heartbeat(offset);
      long now = System.nanoTime();
      if (gate.shouldReport(offset, now)) {
        double seconds = Math.max(1e-3, (now - started) / 1e9);
        reportProgress(request.progressWorkflowId(), new CopyProgress("INITIAL_REPLICATION",
            request.disk(), offset, size, sent, read / seconds, Instant.now()));
      }
    }
    return new DiskCopyResult(request.disk(), read, sent, resumeFrom,
        (System.nanoTime() - started) / 1_000_000);
  }

  void reportProgress(String workflowId, CopyProgress p) {
    try {
      progress.report(workflowId, p);
    } catch (RuntimeException e) {
      // Progress is informational: a missed report must never fail the copy.
      log.debug("progress report to {} failed: {}", workflowId, e.toString());
    }
  }

  private static TransferOptions options(TransferSettings t) {
    return t == null ? null : new TransferOptions(t.compress(), t.bandwidthMBps());
  }

  @Override
  public ReplicationCycle replicateDelta(DeltaRequest request) {
    ProtectionPlan plan = request.plan();
    if (toBucket(plan)) {
      return heartbeatingWhile(() -> buckets.replicateDelta(request, sourceHealth(plan)));
    }
    AgentClient source = agent(plan.sourceSite());
    ReplicationResult r = heartbeatingWhile(() -> call(() -> source.replicate(plan.vm(),
        new ReplicateRequest(request.retentionSeconds(), request.quiesce(),
            options(request.transfer())))));
    List<PointInfo> points = call(() -> points(agent(plan.targetSite()).getVm(plan.vm())));
    return new ReplicationCycle(r.lastSealedGeneration(), r.appliedGeneration(), r.pointTime(),
        r.logsShipped(), r.bytesShipped(), r.appConsistent(), r.quiesceMessage(), points,
        health(call(() -> source.sourceStatus(plan.vm()))));
  }

  /**
   * Heartbeats while one agent call that cannot report progress runs (a delta ships every log
   * in one call), so the server notices a lost worker after the heartbeat timeout instead of
   * the call's whole start-to-close timeout. A failed heartbeat (the attempt was cancelled or
   * timed out) stops the beats; the call itself is left to end.
   */
  static <T> T heartbeatingWhile(Supplier<T> call) {
    ActivityExecutionContext ctx = Activity.getExecutionContext();
    ScheduledFuture<?> beats = HEARTBEATS.scheduleAtFixedRate(() -> ctx.heartbeat(null), 0,
        HEARTBEAT_EVERY.toMillis(), TimeUnit.MILLISECONDS);
    try {
      return call.get();
    } finally {
      beats.cancel(false);
    }
  }

  private static SourceHealth health(SourceStatus s) {
    return new SourceHealth(s.pendingBytes(), s.diskBytes(), s.resyncRequiredReason());
  }

  private static List<PointInfo> points(VmRecord replica) {
    if (replica.replica() == null || replica.replica().points() == null) {
      return List.of();
    }
    return replica.replica().points().stream()
        .map(p -> new PointInfo(p.generation(), p.pointTime(), p.appConsistent())).toList();
  }

  @Override
  public SourceHealth sourceHealth(ProtectionPlan plan) {
    return health(call(() -> agent(plan.sourceSite()).sourceStatus(plan.vm())));
  }

  @Override
  public long beginResync(ProtectionPlan plan) {
    if (toBucket(plan)) {
      return buckets.beginResync(plan);
    }
    return call(() -> agent(plan.sourceSite()).beginResync(plan.vm())).generation();
  }

  @Override
  public DiskResyncResult resyncDisk(ResyncDiskRequest request) {
    if (toBucket(request.plan())) {
      return buckets.resyncDisk(request);
    }
    ActivityExecutionContext ctx = Activity.getExecutionContext();
    long block = ctx.getHeartbeatDetails(Long.class).orElse(0L);
    AgentClient source = agent(request.plan().sourceSite());
    long size = request.sizeBytes();
    long totalBlocks = (size + RESYNC_BLOCK_SIZE - 1) / RESYNC_BLOCK_SIZE;
    ResyncStepSizer sizer = new ResyncStepSizer(RESYNC_BLOCK_SIZE,
        request.transfer() == null ? null : request.transfer().bandwidthMBps());
    long compared = 0;
    long differing = 0;
    long sent = 0;
    long started = System.nanoTime();
    ProgressGate gate = new ProgressGate(size, Math.min(size, block * RESYNC_BLOCK_SIZE), started);
    while (block < totalBlocks) {
      long from = block;
      int blocks = sizer.nextBlocks();
      long stepStarted = System.nanoTime();
      ResyncStepResult r = call(() -> source.resyncStep(request.plan().vm(), request.disk(),
          new ResyncStepRequest(from, blocks, RESYNC_BLOCK_SIZE, options(request.transfer()),
              null)));
      long now = System.nanoTime();
      sizer.measured(r.blocksCompared(), now - stepStarted);
      block = r.nextBlock();
      compared += r.blocksCompared();
      differing += r.blocksDiffering();
      sent += r.bytesSent();
      ctx.heartbeat(block);
      long done = Math.min(size, block * RESYNC_BLOCK_SIZE);
      if (gate.shouldReport(done, now)) {
        double seconds = Math.max(1e-3, (now - started) / 1e9);
        reportProgress(request.progressWorkflowId(), new CopyProgress("RESYNC", request.disk(),
            done, size, sent, compared * RESYNC_BLOCK_SIZE / seconds, Instant.now()));
      }
    }
    return new DiskResyncResult(request.disk(), compared, differing, sent,
        (System.nanoTime() - started) / 1_000_000);
  }

  @Override
  public ReplicaPoint completeResync(ProtectionPlan plan) {
    if (toBucket(plan)) {
      return buckets.completeResync(plan);
    }
    return replicaPointOf(call(() -> agent(plan.sourceSite()).completeResync(plan.vm())),
        plan.targetSite());
  }

  @Override
  public ReplicaPoint rollbackReplica(String site, String vm, long generation) {
    if (sites.isObjectStore(site)) {
      return buckets.replicaPoint(site, vm); // a bucket keeps every point; nothing rolls back
    }
    return replicaPointOf(call(() -> agent(site).rollbackReplica(vm, generation)), site);
  }

  @Override
  public void completeInitialReplication(ProtectionPlan plan) {
    if (toBucket(plan)) {
      buckets.completeInitialReplication(plan);
      return;
    }
    call(() -> agent(plan.sourceSite()).completeInitialReplication(plan.vm()));
  }

  @Override
  public void disableReplication(ProtectionPlan plan) {
    call(() -> {
      agent(plan.sourceSite()).disableProtection(plan.vm());
      return null;
    });
  }

  @Override
  public ReplicaPoint replicaPoint(String site, String vm) {
    if (sites.isObjectStore(site)) {
      return buckets.replicaPoint(site, vm);
    }
    return replicaPointOf(call(() -> agent(site).getVm(vm)), site);
  }

  private static ReplicaPoint replicaPointOf(VmRecord r, String site) {
    if (r.replica() == null) {
      throw ApplicationFailure.newNonRetryableFailure("VM " + r.name() + " on " + site
          + " is not a replica", FailureTypes.NOT_PROTECTED);
    }
    return new ReplicaPoint(r.replica().appliedGeneration(), r.replica().pointTime(),
        r.replica().initialComplete(), points(r));
  }

  @Override
  public void powerOn(String site, String vm) {
    call(() -> agent(site).setPower(vm, VmRecord.Power.RUNNING));
  }

  @Override
  public void powerOff(String site, String vm) {
    call(() -> agent(site).setPower(vm, VmRecord.Power.OFF));
  }

  @Override
  public void commitFailover(ProtectionPlan plan) {
    call(() -> agent(plan.targetSite()).setRole(plan.vm(), VmRecord.Role.PRIMARY));
    try {
      agent(plan.sourceSite()).setRole(plan.vm(), VmRecord.Role.FAILED_OVER);
    } catch (AgentException e) {
      if (e.code() != ErrorCode.PEER_UNREACHABLE) {
        throw ApplicationFailure.newNonRetryableFailure(e.getMessage(), e.code().name());
      }
      // An unplanned failover's source is often gone; the replica is committed regardless.
      log.warn("source site {} unreachable while committing the failover of {}: {}",
          plan.sourceSite(), plan.vm(), e.getMessage());
    }
  }

  @Override
  public TestVm createTestVm(String site, String vm, long generation, String key) {
    if (sites.isObjectStore(site)) {
      return buckets.createTestVm(site, vm, generation, key);
    }
    return testVm(call(() -> agent(site).createTestClone(vm, generation, key)));
  }

  @Override
  public TestVm findTestVm(String site, String vm) {
    if (sites.isObjectStore(site)) {
      return buckets.findTestVm(site, vm);
    }
    return call(() -> agent(site).testClones()).stream().filter(c -> c.vm().equals(vm))
        .findFirst().map(AgentActivitiesImpl::testVm).orElse(null);
  }

  @Override
  public TestCleanup deleteTestVm(String site, String vm) {
    if (sites.isObjectStore(site)) {
      return buckets.deleteTestVm(site, vm);
    }
    TestCleanupReport r = call(() -> agent(site).deleteTestClone(vm));
    return new TestCleanup(r.testVm(), r.existed(), r.remaining());
  }

  private static TestVm testVm(TestCloneInfo c) {
    return new TestVm(c.vm(), c.testVm(), c.generation(), c.pointTime(), c.key(), c.createdAt(),
        c.exports());
  }

  @Override
  public void startReplica(String site, String vm, long generation, String key) {
    if (sites.isObjectStore(site)) {
      buckets.startReplica(site, vm, generation);
      return;
    }
    call(() -> agent(site).startReplica(vm, generation, key));
  }

  @Override
  public void stopReplica(String site, String vm) {
    if (sites.isObjectStore(site)) {
      buckets.stopReplica(site, vm);
      return;
    }
    call(() -> agent(site).stopReplica(vm));
  }

  @Override
  public PromoteOutcome promoteReplica(ProtectionPlan plan) {
    if (toBucket(plan)) {
      return buckets.promote(plan);
    }
    return new PromoteOutcome(call(() -> agent(plan.targetSite()).promoteReplica(plan.vm()))
        .changedBytes());
  }

  @Override
  public void fenceVm(String site, String vm) {
    call(() -> {
      AgentClient a = agent(site);
      // Only a primary can run as the VM there. A copy that is fenced already, or that Reprotect
      // has since made the replica of the active site, must be left as it is: a fence owed for a
      // long time can land after that.
      VmRecord.Role role = a.getVm(vm).role();
      if (role != VmRecord.Role.PRIMARY) {
        log.info("fence of {} on {}: its copy there is {} already; nothing to do", vm, site, role);
        return null;
      }
      a.setPower(vm, VmRecord.Power.OFF);
      return a.setRole(vm, VmRecord.Role.FAILED_OVER);
    });
  }

  @Override
  public void unfenceVm(String site, String vm) {
    call(() -> agent(site).setRole(vm, VmRecord.Role.PRIMARY));
  }

  @Override
  public ReprotectPlan planReprotect(String vm) {
    VmRecord active = null;
    String activeSite = null;
    boolean seen = false;
    for (String site : sites.sites()) {
      VmRecord r = call(() -> agent(site).listVms()).stream().filter(v -> v.name().equals(vm))
          .findFirst().orElse(null);
      seen |= r != null;
      if (r != null && r.role() == VmRecord.Role.PRIMARY && r.protection() != null
          && !r.protection().initialComplete()) {
        active = r;
        activeSite = site;
      }
    }
    if (!seen) {
      throw notFoundOnAnySite(vm);
    }
    if (active == null) {
      throw ApplicationFailure.newNonRetryableFailure("VM " + vm + " has no committed failover "
          + "waiting for reverse replication (fail it over and commit first, or it is "
          + "protected already)", FailureTypes.NOT_FAILED_OVER);
    }
    String oldSite = active.protection().targetSite();
    String oldCopy = call(() -> agent(oldSite).listVms()).stream()
        .filter(v -> v.name().equals(vm)).findFirst()
        .map(v -> v.role() == VmRecord.Role.FAILED_OVER ? "FAILED_OVER"
            : v.role() == VmRecord.Role.REPLICA ? "REPLICA" : v.power().name())
        .orElse("MISSING");
    String site = activeSite;
    long changed = call(() -> agent(site).sourceStatus(vm)).changedSinceFailoverBytes();
    return new ReprotectPlan(vm, activeSite, oldSite, oldCopy,
        active.home() == null ? oldSite : active.home(), changed, active.disks().stream()
            .map(d -> new ProtectionPlan.DiskInfo(d.name(), d.sizeBytes())).toList());
  }

  @Override
  public ReverseOutcome reverseOldSource(String oldSite, String vm, String newSource) {
    if (sites.isObjectStore(oldSite)) {
      return buckets.reverseOldSource(oldSite, vm);
    }
    ReverseResult r = call(() -> agent(oldSite).reverse(vm, newSource));
    SalvageInfo s = r.salvage();
    // The VM ran from a bucket: its writes there are known by chunk only, so the old disks are
    // compared block by block with the active ones (as the seed's failback from the cloud does).
    String resyncReason = r.resyncReason() == null && sites.isObjectStore(newSource)
        ? "it ran on " + newSource + " from the bucket, where its writes are known by the "
            + "chunk only" : r.resyncReason();
    Salvaged salvaged = s == null ? null : new Salvaged(s.id(), s.site(), s.path(), s.bytes(),
        s.records(), s.rangeCount(), s.firstWrite(), s.lastWrite(), s.ranges().stream()
            .map(x -> x.disk() + ":" + x.offset() + "+" + x.length()).toList());
    return new ReverseOutcome(salvaged, resyncReason);
  }

  @Override
  public SeedResult sendChangedRanges(ProtectionPlan plan, String disk, TransferSettings transfer) {
    SendChangedResult r = call(() -> agent(plan.sourceSite()).sendChanged(plan.vm(), disk,
        options(transfer)));
    return new SeedResult(r.ranges(), r.bytesSent());
  }

  @Override
  public String homeOf(ProtectionPlan plan) {
    VmRecord r = call(() -> agent(plan.sourceSite()).getVm(plan.vm()));
    return r.home() == null ? plan.sourceSite() : r.home();
  }

  @Override
  public AgentActivityRecords.ScriptOutcome runPlanScript(String site, String script,
      AgentActivityRecords.ScriptContext context, java.time.Duration timeout) {
    String json;
    try {
      json = io.siterecovery.agent.Json.MAPPER.writeValueAsString(context);
    } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
      throw new IllegalStateException("the script context does not serialize", e);
    }
    int seconds = (int) Math.max(1, Math.min(3600, timeout.toSeconds()));
    ScriptRunResult r = call(() -> agent(site).runScript(script, new ScriptRunRequest(
        context.plan(), context.operation(), context.group(), context.direction(), json,
        seconds)));
    return new AgentActivityRecords.ScriptOutcome(r.script(), r.site(), r.exitCode(),
        r.timedOut(), r.durationMillis(), r.output());
  }

  @Override
  public List<String> planScripts(String site) {
    return call(() -> agent(site).scripts());
  }

  @Override
  public AgentActivityRecords.SiteStorage siteStorage(String site) {
    io.siterecovery.agent.api.AgentMessages.StorageInfo s = call(() -> agent(site).storage());
    return new AgentActivityRecords.SiteStorage(s.site(), s.freeBytes(), s.totalBytes());
  }

  /** Maps agent errors to failures: the code is the type, non-recoverable ones do not retry. */
  static <T> T call(Supplier<T> call) {
    try {
      return call.get();
    } catch (AgentException e) {
      throw failure(e);
    }
  }

  static ApplicationFailure failure(AgentException e) {
    return e.code().recoverable() ? ApplicationFailure.newFailure(e.getMessage(), e.code().name())
        : ApplicationFailure.newNonRetryableFailure(e.getMessage(), e.code().name());
  }
}
