package io.siterecovery.agent.source;

import io.siterecovery.agent.resync.ResyncLedger;
import io.siterecovery.agent.transport.RangeStream;
import io.siterecovery.agent.transport.Transport;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.ApplyRequest;
import io.siterecovery.agent.api.AgentMessages.CopyRangeResult;
import io.siterecovery.agent.api.AgentMessages.ProtectionState;
import io.siterecovery.agent.api.AgentMessages.ReplicateRequest;
import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.api.AgentMessages.SendChangedResult;
import io.siterecovery.agent.api.AgentMessages.SourceStatus;
import io.siterecovery.agent.api.AgentMessages.TransferOptions;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.ChangeTracker;
import io.siterecovery.agent.hrl.ChangeTracker.SealedLog;
import io.siterecovery.agent.hrl.HrlCorruptException;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.metrics.AgentMetrics;
import io.siterecovery.agent.objectstore.ship.BucketShipper;
import io.siterecovery.agent.vm.ChangedRanges;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.SourceProtection;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The primary side of replication: tracking, the initial copy pushed to the peer, and delta
 * cycles (swap all disks, ship sealed logs in order, have the peer apply them, drop them here).
 */
public final class ReplicationSource {
  private static final Logger log = LoggerFactory.getLogger(ReplicationSource.class);

  private static final String APP_CONSISTENT_DIR = "app-consistent";

  private final VmHost host;
  private final Function<String, AgentClient> peers;
  private final AgentMetrics metrics;
  private final BucketReplicas bucketReplicas;

  public ReplicationSource(VmHost host, Function<String, AgentClient> peers,
      AgentMetrics metrics) {
    this(host, peers, metrics, (vm, site) -> {
      throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vm.name() + " is replicated to"
          + " the bucket of site " + site + ", which this agent cannot reach");
    });
  }

  /** {@code bucketReplicas}: drops a VM's replica in a bucket when its protection ends. */
  public ReplicationSource(VmHost host, Function<String, AgentClient> peers,
      AgentMetrics metrics, BucketReplicas bucketReplicas) {
    this.host = host;
    this.peers = peers;
    this.metrics = metrics;
    this.bucketReplicas = bucketReplicas;
  }

  /** The replicas of VMs in object-store sites' buckets, which a peer's agent does not hold. */
  @FunctionalInterface
  public interface BucketReplicas {
    void drop(Vm vm, String site) throws IOException;
  }

  /** Creates the relationship; idempotent, so a retried activity finds it as it left it. */
  public ProtectionState enable(String vmName, String targetSite)
      throws IOException {
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      VmRecord r = vm.record();
      if (r.role() != VmRecord.Role.PRIMARY) {
        throw new AgentException(ErrorCode.INVALID_STATE,
            "VM " + vmName + " on " + host.site() + " is a " + r.role() + ", not a primary");
      }
      SourceProtection existing = r.protection();
      if (existing != null && !existing.targetSite().equals(targetSite)) {
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vmName
            + " is already replicated to " + existing.targetSite());
      }
      if (BucketShipper.isBucketSource(vm, targetSite)) {
        // a site may be both a bucket and an agent: this VM ships to the bucket, not the agent
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vmName + " is replicated to"
            + " the bucket of site " + targetSite + ", not to its agent");
      }
      if (existing == null) {
        peers.apply(targetSite).createReplica(vmName, host.site(), r.disks(), r.home());
        // Tracking starts before the first byte is copied, so no write can fall between the two.
        host.attachTrackers(vm);
        host.update(vm, rec -> rec.withProtection(new SourceProtection(targetSite, false)));
        log.info("[{}] protection of {} enabled towards {}", host.site(), vmName, targetSite);
      } else if (!existing.initialComplete()) {
        // A committed failover leaves protection towards the old source pending, its writes
        // tracked from the commit on: the replica there is made, or found, now.
        peers.apply(targetSite).createReplica(vmName, host.site(), r.disks(), r.home());
        host.attachTrackers(vm);
      }
      return state(vm);
    } finally {
      vm.operationLock().unlock();
    }
  }

  public ProtectionState state(String vmName) {
    return state(host.get(vmName));
  }

  private ProtectionState state(Vm vm) {
    SourceProtection p = requireProtection(vm);
    long active = vm.disks().iterator().next().tracker().activeGeneration();
    return new ProtectionState(vm.name(), p.targetSite(), p.initialComplete(), active);
  }

  private static SourceProtection requireProtection(Vm vm) {
    SourceProtection p = vm.record().protection();
    if (p == null) {
      throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vm.name() + " is not protected");
    }
    return p;
  }

  /** Pushes one range of a disk to the replica, skipping all-zero chunks. */
  public CopyRangeResult copyRange(String vmName, String diskName, long offset, long length) {
    return copyRange(vmName, diskName, offset, length, null);
  }

  /** As above, compressed and paced as {@code transfer} says (null: defaults). */
  public CopyRangeResult copyRange(String vmName, String diskName, long offset, long length,
      TransferOptions transfer) {
    return copyRange(vmName, diskName, offset, length, transfer, null);
  }

  /** The longest {@code budget} a copy call may ask for: requests stay bounded in time. */
  static final java.time.Duration MAX_COPY_BUDGET = java.time.Duration.ofMinutes(10);

  /**
   * As above, ending early at a frame boundary once {@code budget} has passed (null: none); the
   * result's {@code nextOffset} says where it stopped.
   */
  public CopyRangeResult copyRange(String vmName, String diskName, long offset, long length,
      TransferOptions transfer, java.time.Duration budget) {
    if (budget != null && (budget.isNegative() || budget.isZero()
        || budget.compareTo(MAX_COPY_BUDGET) > 0)) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "budgetMillis must be between 1 and "
          + MAX_COPY_BUDGET.toMillis() + ", got " + budget.toMillis());
    }
    TransferOptions t = Transport.validate(transfer);
    Vm vm = host.get(vmName);
    SourceProtection p = requireProtection(vm);
    VirtualDisk disk = vm.disk(diskName);
    if (offset < 0 || length <= 0 || offset > disk.size()) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "range " + offset + "+" + length
          + " outside disk of " + disk.size() + " bytes");
    }
    try (RangeStream.Sender sender = new RangeStream.Sender(disk, offset, length,
        budget, frameBytes(budget, t))) {
      peers.apply(p.targetSite()).sendRanges(vmName, diskName, () -> sender, t);
      metrics.shipped(vmName, AgentMetrics.Kind.RANGES, sender.bytesSent());
      return new CopyRangeResult(offset, sender.nextOffset(), sender.bytesRead(),
          sender.bytesSent());
    }
  }

  /**
   * A call with a budget ends one frame after it; on a capped link a frame is about a quarter of a
   * second of the cap (64 KiB to 1 MiB), so that even at 0.1 MB/s the call ends on time.
   */
  private static int frameBytes(java.time.Duration budget, TransferOptions t) {
    if (budget == null || t.bandwidthMBps() == null) {
      return RangeStream.Sender.MAX_FRAME;
    }
    long quarterSecond = (long) (t.bandwidthMBps() * Transport.MB / 4);
    return (int) Math.max(64 << 10, Math.min(RangeStream.Sender.MAX_FRAME,
        quarterSecond / (64 << 10) * (64 << 10)));
  }

  /** One delta cycle without quiesce, keeping every recovery point on the replica. */
  public ReplicationResult replicate(String vmName) throws IOException {
    return replicate(vmName, new ReplicateRequest(null, false, null));
  }

  /**
   * One delta cycle. Safe to repeat: the peer skips generations it has already applied. With
   * {@code quiesce}, the VM's quiesce hook runs first (before the disks' writes are held, so the
   * hook can still write); if it succeeds the generation sealed now is app-consistent. Logs
   * travel compressed and paced as {@code request.transfer()} says (null: defaults).
   */
  public ReplicationResult replicate(String vmName, ReplicateRequest request) throws IOException {
    TransferOptions t = Transport.validate(request.transfer());
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    long cycleStarted = System.nanoTime();
    boolean ok = false;
    try {
      SourceProtection p = requireProtection(vm);
      ResyncLedger.requireNoResyncUnderWay(vm);
      AgentClient peer = peers.apply(p.targetSite());
      QuiesceRunner.Outcome quiesce = request.quiesce() ? QuiesceRunner.quiesce(host, vm) : null;
      long started = System.nanoTime();
      long sealed = swapAll(vm);
      long swapped = System.nanoTime();
      long shipNanos = 0;
      boolean appConsistent = quiesce != null && quiesce.ok();
      if (appConsistent) {
        markAppConsistent(vm, sealed);
      }
      TreeSet<Long> generations = new TreeSet<>();
      for (VirtualDisk d : vm.disks()) {
        d.tracker().sealedLogs().forEach(l -> generations.add(l.generation()));
      }
      int logs = 0;
      long bytes = 0;
      VmRecord replica = null;
      for (long g : generations) {
        Instant pointTime = null;
        List<SealedLog> batch = new ArrayList<>();
        for (VirtualDisk d : vm.disks()) {
          SealedLog l = d.tracker().sealedLogs().stream().filter(x -> x.generation() == g)
              .findFirst().orElseThrow(() -> missing(vm, d, g));
          batch.add(l);
          Instant sealedAt = Files.getLastModifiedTime(l.path()).toInstant();
          pointTime = pointTime == null || sealedAt.isAfter(pointTime) ? sealedAt : pointTime;
        }
        long shipping = System.nanoTime();
        int i = 0;
        for (VirtualDisk d : vm.disks()) {
          SealedLog l = batch.get(i++);
          try {
            peer.sendLog(vmName, d.name(), g, l.path(), t);
          } catch (AgentException e) {
            // The replica checks every checksum on arrival, so a log is read here only when it
            // was refused: damaged at this end needs a resync, damaged on the way a retry.
            if (e.code() == ErrorCode.TRANSFER_CORRUPT) {
              verify(vm, d, l);
            }
            throw e;
          }
          bytes += l.sizeBytes();
          logs++;
          metrics.shipped(vmName, AgentMetrics.Kind.LOG, l.sizeBytes());
        }
        long applying = System.nanoTime();
        shipNanos += applying - shipping;
        replica = peer.applyLogs(vmName, new ApplyRequest(g, pointTime,
            isMarkedAppConsistent(vm, g), request.retentionSeconds()),
            batch.stream().mapToLong(SealedLog::sizeBytes).sum());
        for (VirtualDisk d : vm.disks()) {
          d.tracker().deleteSealed(g);
        }
        Files.deleteIfExists(appConsistentMarker(vm, g));
      }
      if (replica == null) {
        replica = peer.getVm(vmName);
      }
      log.debug("[{}] cycle of {}: sealed generation {} in {} ms; shipped {} logs ({} bytes) in {}"
          + " ms; whole cycle {} ms", host.site(), vmName, sealed, (swapped - started) / 1_000_000,
          logs, bytes, shipNanos / 1_000_000, (System.nanoTime() - started) / 1_000_000);
      ok = true;
      return new ReplicationResult(sealed, replica.replica().appliedGeneration(),
          replica.replica().pointTime(), logs, bytes, appConsistent,
          quiesce == null ? null : quiesce.message());
    } finally {
      // Timed once the VM is ours (not while waiting for another operation), failures too.
      metrics.cycle(vmName, System.nanoTime() - cycleStarted, ok);
      vm.operationLock().unlock();
    }
  }

  /** A sealed log that vanished took changes with it: only a resync can bring them over. */
  private static AgentException missing(Vm vm, VirtualDisk d, long generation) {
    String reason = "log generation " + generation + " of " + vm.name() + "/" + d.name()
        + " is missing";
    ResyncLedger.markRequired(vm, ErrorCode.LOG_CORRUPT + ": " + reason);
    return new AgentException(ErrorCode.LOG_CORRUPT, reason);
  }

  /**
   * Remembers, until the generation is applied, that it was sealed right after a successful
   * quiesce, so a cycle that ships it later (after a failed one) still reports it so.
   */
  private static void markAppConsistent(Vm vm, long generation) throws IOException {
    Path marker = appConsistentMarker(vm, generation);
    Files.createDirectories(marker.getParent());
    if (!Files.exists(marker)) {
      Files.createFile(marker);
    }
  }

  private static boolean isMarkedAppConsistent(Vm vm, long generation) {
    return Files.exists(appConsistentMarker(vm, generation));
  }

  private static Path appConsistentMarker(Vm vm, long generation) {
    return vm.dir().resolve(APP_CONSISTENT_DIR).resolve(String.format("%012d", generation));
  }

  private static void verify(Vm vm, VirtualDisk d, SealedLog l) throws IOException {
    try {
      HrlReader.verifySealed(l.path());
    } catch (HrlCorruptException e) {
      String reason = "sealed log of " + vm.name() + "/" + d.name() + " generation "
          + l.generation() + " is corrupt (" + e.getMessage() + ")";
      ResyncLedger.markRequired(vm, ErrorCode.LOG_CORRUPT + ": " + reason);
      throw new AgentException(ErrorCode.LOG_CORRUPT, reason + "; the disk needs a resync", e);
    }
  }

  /** Seals every disk's active log at one instant: writes to all disks are held meanwhile. */
  public static long swapAll(Vm vm) throws IOException {
    List<VirtualDisk> disks = new ArrayList<>(vm.disks());
    return holdAndSwap(disks, 0);
  }

  private static long holdAndSwap(List<VirtualDisk> disks, int index) throws IOException {
    if (index == disks.size()) {
      long sealed = -1;
      for (VirtualDisk d : disks) {
        sealed = d.tracker().swap();
      }
      return sealed;
    }
    return disks.get(index).withWritesHeld(() -> holdAndSwap(disks, index + 1));
  }

  /**
   * Reverse replication's seed: sends the ranges of one disk that changed between the failover
   * point and its commit ({@link ChangedRanges}) to the replica, which otherwise holds the disk
   * as it was at the failover point. Safe to repeat; writes since the commit follow as logs.
   */
  public SendChangedResult sendChanged(String vmName, String diskName, TransferOptions transfer)
      throws IOException {
    TransferOptions t = Transport.validate(transfer);
    Vm vm = host.get(vmName);
    SourceProtection p = requireProtection(vm);
    if (p.initialComplete()) {
      throw new AgentException(ErrorCode.INVALID_STATE, "the replica of " + vmName + " on "
          + p.targetSite() + " is complete already");
    }
    VirtualDisk disk = vm.disk(diskName);
    List<long[]> ranges = ChangedRanges.of(vm, disk);
    RangeStream.ExtentSender sender = new RangeStream.ExtentSender(disk, ranges);
    peers.apply(p.targetSite()).sendRanges(vmName, diskName, () -> sender, t);
    metrics.shipped(vmName, AgentMetrics.Kind.RANGES, sender.bytesSent());
    log.info("[{}] {}/{}: {} ranges changed since the failover sent to {} ({} bytes)",
        host.site(), vmName, diskName, ranges.size(), p.targetSite(), sender.bytesSent());
    return new SendChangedResult(diskName, ranges.size(), sender.bytesSent());
  }

  public ProtectionState completeInitial(String vmName) throws IOException {
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      SourceProtection p = requireProtection(vm);
      peers.apply(p.targetSite()).completeReplica(vmName);
      host.update(vm, r -> r.withProtection(new SourceProtection(p.targetSite(), true)));
      ChangedRanges.forget(vm); // sent and merged: the replica equals this VM as of a point
      return state(vm);
    } finally {
      vm.operationLock().unlock();
    }
  }

  private static long changedSinceFailover(Vm vm) {
    try {
      return ChangedRanges.bytes(vm);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  public SourceStatus status(String vmName) {
    Vm vm = host.get(vmName);
    requireProtection(vm);
    long pending = 0;
    int sealedLogs = 0;
    long active = 0;
    long diskBytes = 0;
    for (VirtualDisk d : vm.disks()) {
      ChangeTracker t = d.tracker();
      pending += t.pendingBytes();
      sealedLogs += t.sealedLogs().size();
      active = t.activeGeneration();
      diskBytes += d.size();
    }
    return new SourceStatus(vmName, active, sealedLogs, pending, diskBytes,
        ResyncLedger.load(vm).requiredReason(),
        changedSinceFailover(vm));
  }

  /** Ends the relationship: tracking stops, logs go, the peer drops its replica. */
  public void disable(String vmName) throws IOException {
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      SourceProtection p = vm.record().protection();
      if (p == null) {
        return;
      }
      if (BucketShipper.isBucketSource(vm, p.targetSite())) {
        // the bucket is the replica, not the site's agent (a site may be both)
        bucketReplicas.drop(vm, p.targetSite());
      } else {
        peers.apply(p.targetSite()).deleteReplica(vmName);
      }
      for (VirtualDisk d : vm.disks()) {
        ChangeTracker t = d.tracker();
        d.setTracker(null);
        if (t != null) {
          t.stop();
        }
      }
      Path markers = vm.dir().resolve(APP_CONSISTENT_DIR);
      if (Files.isDirectory(markers)) {
        try (var files = Files.list(markers)) {
          for (Path m : files.toList()) {
            Files.deleteIfExists(m);
          }
        }
      }
      host.update(vm, r -> r.withProtection(null));
      BucketShipper.forgetSource(vm);
      // A resync under way or required belonged to this relationship: a new one starts afresh
      // (its generations start again at 1).
      ResyncLedger.clear(vm.dir());
      log.info("[{}] protection of {} disabled", host.site(), vmName);
    } finally {
      vm.operationLock().unlock();
    }
  }
}
