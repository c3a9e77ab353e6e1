package io.siterecovery.agent.replica;

import io.siterecovery.agent.transport.RangeStream;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.FaultInjection;
import io.siterecovery.agent.api.AgentMessages.ApplyRequest;
import io.siterecovery.agent.disk.Overlay;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.undo.UndoCorruptException;
import io.siterecovery.agent.undo.UndoReader;
import io.siterecovery.agent.hrl.HrlCorruptException;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlHeader;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.metrics.AgentMetrics;
import io.siterecovery.agent.hrl.HrlReceiver;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.RecoveryPointInfo;
import io.siterecovery.agent.vm.VmRecord.ReplicaState;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The secondary side: receives the initial copy and sealed logs, verifies each log before it is
 * kept, and applies a generation to all disks of the VM in sequence order.
 */
public final class ReplicaStore {
  private static final Logger log = LoggerFactory.getLogger(ReplicaStore.class);

  private final VmHost host;
  private final RecoveryPoints points;
  private final AgentMetrics metrics;

  public ReplicaStore(VmHost host, AgentMetrics metrics) {
    this.host = host;
    this.metrics = metrics;
    this.points = new RecoveryPoints(host);
  }

  public VmRecord create(String vm, String sourceSite, List<VmRecord.DiskSpec> disks,
      String home) throws IOException {
    if (sourceSite == null || disks == null || disks.isEmpty()) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "a replica needs a source site and disks");
    }
    return host.createReplica(vm, disks, sourceSite, home).record();
  }

  /**
   * The undo file that takes disk {@code d} of a replica from generation {@code generation} back
   * to the point before it (docs/undo-journal.md); it exists while that point is retained.
   */
  public static Path undoFile(Vm vm, VirtualDisk d, long generation) {
    return RecoveryPoints.undoFile(vm, d, generation);
  }

  /**
   * Puts in {@code overlays} (one per disk, by name) the contents each disk of the replica had at
   * its retained point {@code point}: the generations applied after it are undone oldest first,
   * and a range keeps the first old contents it gets, which are the point's (a range the
   * generation after the point did not touch had then what the next one saved). Reads only undo
   * data: the cost follows what changed since the point, not the disks' size. Returns the number
   * of ranges taken. The caller holds the VM's operation lock.
   */
  public static long rewind(Vm vm, Map<String, Overlay> overlays, long point) throws IOException {
    long applied = vm.record().replica().appliedGeneration();
    long entries = 0;
    for (long g = point + 1; g <= applied; g++) {
      for (VirtualDisk d : vm.disks()) {
        Path undo = undoFile(vm, d, g);
        if (!Files.exists(undo)) {
          throw new AgentException(ErrorCode.INVALID_STATE, "the undo data of generation " + g
              + " of " + vm.name() + "/" + d.name() + " is gone; generation " + point
              + " can no longer be rebuilt");
        }
        try {
          entries += UndoReader.visit(undo, d, overlays.get(d.name())::preserveContents);
        } catch (UndoCorruptException e) {
          throw new AgentException(ErrorCode.LOG_CORRUPT, "undo data of generation " + g + " of "
              + vm.name() + "/" + d.name() + " is corrupt: " + e.getMessage(), e);
        }
      }
    }
    return entries;
  }

  public long receiveRanges(String vmName, String diskName, InputStream frames) throws IOException {
    Vm vm = host.getReplica(vmName);
    VirtualDisk disk = vm.disk(diskName);
    host.replicaWatcher().beforeRewrite(vm, "a copy of ranges");
    if (vm.record().replica().points().size() > 1) {
      // the undo chain does not cover writes made outside apply: older points are lost
      vm.operationLock().lock();
      try {
        points.discardHistory(vm);
      } finally {
        vm.operationLock().unlock();
      }
    }
    long written = RangeStream.receive(frames, disk);
    disk.forceImage(); // the caller's heartbeat will say these bytes are done
    metrics.applied(vmName, AgentMetrics.Kind.RANGES, written);
    return written;
  }

  /**
   * Stores a log in the incoming folder only once it verifies (checked as it arrives); a bad
   * transfer is refused and retried. The log is not forced: until its generation is applied the
   * source keeps its own copy, and a staged log torn by a power loss fails the verification of
   * {@link #apply} and is shipped again.
   */
  public void stageLog(String vmName, String diskName, long generation, InputStream body)
      throws IOException {
    Vm vm = host.getReplica(vmName);
    VirtualDisk disk = vm.disk(diskName);
    Path incoming = Files.createDirectories(vm.dir().resolve("incoming"));
    Path part = incoming.resolve(HrlFormat.fileName(diskName, generation) + ".part");
    try {
      HrlHeader header;
      try (FileChannel out = FileChannel.open(part, StandardOpenOption.CREATE,
          StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
        header = HrlReceiver.receive(body, out);
      }
      // The records were checked against the header's disk size: it must be this disk's, or
      // the apply could write past the end of the image.
      if (!header.diskId().equals(disk.id()) || header.generation() != generation
          || header.diskSize() != disk.size()) {
        throw new HrlCorruptException("log is for disk " + header.diskId() + " of "
            + header.diskSize() + " bytes, generation " + header.generation());
      }
    } catch (HrlCorruptException e) {
      Files.deleteIfExists(part);
      throw new AgentException(ErrorCode.TRANSFER_CORRUPT, "log " + vmName + "/" + diskName
          + " generation " + generation + " failed verification on arrival: " + e.getMessage());
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(part);
      throw e;
    }
    Files.move(part, incoming.resolve(HrlFormat.fileName(diskName, generation)),
        StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  /** Applies one generation as a crash-consistent point, keeping all older points. */
  public VmRecord apply(String vmName, long generation, Instant pointTime) throws IOException {
    return apply(vmName, new ApplyRequest(generation, pointTime, false, null));
  }

  /**
   * Applies one generation to every disk, atomically across a crash. Unless the replica has no
   * point yet (initial copy not complete), the contents the logs overwrite are first saved as
   * undo data and made durable; then the logs are applied and the images forced; only then is the
   * generation recorded as applied. A crash before that record is undone on restart from the undo
   * data, so the replica is at the previous point or at the new one, never in between. Then points
   * older than the request's retention are pruned.
   */
  public VmRecord apply(String vmName, ApplyRequest request) throws IOException {
    if (request.retentionSeconds() != null && request.retentionSeconds() < 0) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "retentionSeconds must not be negative");
    }
    long generation = request.generation();
    Vm vm = host.getReplica(vmName);
    vm.operationLock().lock();
    try {
      if (vm.record().power() == VmRecord.Power.RUNNING) {
        throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vmName + " is running "
            + "(failed over); logs apply again once the failover is cancelled");
      }
      points.recoverPending(vm);
      ReplicaState state = vm.record().replica();
      if (generation <= state.appliedGeneration()) {
        // A cycle repeated after a crash ships an applied generation again: drop that copy, or
        // it would stay in the incoming folder for good.
        deleteStaged(vm, generation);
        return vm.record();
      }
      if (generation != state.appliedGeneration() + 1) {
        throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vmName + " is at generation "
            + state.appliedGeneration() + "; generation " + generation + " is out of sequence");
      }
      Path incoming = vm.dir().resolve("incoming");
      Map<VirtualDisk, Path> logs = new LinkedHashMap<>();
      for (VirtualDisk d : vm.disks()) {
        Path logFile = incoming.resolve(HrlFormat.fileName(d.name(), generation));
        if (!Files.exists(logFile)) {
          throw new AgentException(ErrorCode.INVALID_STATE, "log generation " + generation
              + " of " + vmName + "/" + d.name() + " has not arrived");
        }
        logs.put(d, logFile);
      }
      // Before the initial copy is complete the replica holds no point to go back to.
      // After a resync (no point time) the replica is no point at all: nothing to roll back to.
      boolean keepUndo = state.initialComplete() && state.appliedGeneration() > 0
          && state.pointTime() != null;
      long undoBytes = 0;
      long started = System.nanoTime();
      try {
        if (keepUndo) {
          undoBytes = points.capture(vm, generation, logs); // verifies every log as it reads
        } else {
          for (Path logFile : logs.values()) {
            HrlReader.verifySealed(logFile);
          }
        }
      } catch (HrlCorruptException e) {
        // Nothing is applied yet and the source still has its logs: ship them again.
        deleteStaged(vm, generation);
        throw new AgentException(ErrorCode.TRANSFER_CORRUPT, "a staged log of generation "
            + generation + " of " + vmName + " is damaged (" + e.getMessage()
            + "); it was dropped and will be shipped again", e);
      }
      FaultInjection.reached("undo-sealed");
      try {
        host.replicaWatcher().beforeApply(vm, logs);
      } catch (IOException | RuntimeException e) {
        points.deleteUndo(vm, generation); // nothing is applied yet
        throw e;
      }
      long undone = System.nanoTime();
      long records = 0;
      long[] changedBytes = {0};
      try {
        for (Map.Entry<VirtualDisk, Path> e : logs.entrySet()) {
          VirtualDisk d = e.getKey();
          // verified just above: one read, which checks the checksums again on the way
          records += HrlReader.visitVerifying(e.getValue(), rec -> {
            changedBytes[0] += rec.length();
            if (rec.isZero()) {
              d.zeroAt(rec.offset(), rec.length());
            } else {
              d.writeAt(rec.offset(), rec.data());
            }
            FaultInjection.reached("apply-record");
          }).records();
          d.forceImage();
        }
      } catch (IOException | RuntimeException e) {
        if (keepUndo) {
          points.undoFailedApply(vm, generation, e);
        }
        if (e instanceof HrlCorruptException c) {
          throw corrupt(vmName, c);
        }
        throw e;
      }
      FaultInjection.reached("apply-forced");
      List<RecoveryPointInfo> kept = new ArrayList<>(keepUndo ? RecoveryPoints.points(state)
          : List.of());
      kept.add(new RecoveryPointInfo(generation, request.pointTime(), request.appConsistent(),
          undoBytes));
      host.update(vm, r -> r.withReplica(new ReplicaState(state.sourceSite(),
          state.initialComplete(), generation, request.pointTime(), kept)));
      FaultInjection.reached("apply-recorded");
      deleteStaged(vm, generation);
      points.prune(vm, request.retentionSeconds());
      metrics.applied(vmName, AgentMetrics.Kind.LOG, changedBytes[0]);
      metrics.applyTook(vmName, System.nanoTime() - started);
      log.debug("[{}] applied generation {} of {} ({} records; undo data: {} bytes in {} ms; "
          + "apply and record: {} ms)", host.site(), generation, vmName, records, undoBytes,
          (undone - started) / 1_000_000, (System.nanoTime() - undone) / 1_000_000);
      return vm.record();
    } finally {
      vm.operationLock().unlock();
    }
  }

  private static AgentException corrupt(String vmName, HrlCorruptException e) {
    return new AgentException(ErrorCode.LOG_CORRUPT, "a staged log of " + vmName
        + " is corrupt: " + e.getMessage(), e);
  }

  /**
   * Rolls a powered-off replica back to a retained recovery point: the replica then equals the
   * source at that point, and the later points are gone. Atomic per generation across a crash.
   */
  public VmRecord rollback(String vmName, long generation) throws IOException {
    Vm vm = host.getReplica(vmName);
    vm.operationLock().lock();
    try {
      synchronized (vm) { // power changes wait until the rollback is done
        if (vm.record().power() == VmRecord.Power.RUNNING) {
          throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vmName
              + " is powered on; power it off before rolling it back");
        }
        host.replicaWatcher().beforeRewrite(vm, "a roll-back");
        points.recoverPending(vm);
        long from = vm.record().replica().appliedGeneration();
        points.rollback(vm, generation);
        if (from != generation) {
          log.info("[{}] replica {} rolled back from generation {} to {}", host.site(), vmName,
              from, generation);
        }
        return vm.record();
      }
    } finally {
      vm.operationLock().unlock();
    }
  }

  /**
   * On agent start, before requests are served: finishes or undoes what a crash interrupted on
   * every replica (a half-applied generation, a rollback) and drops undo data no point needs.
   */
  public void recover() {
    for (VmRecord r : host.list()) {
      if (r.role() != VmRecord.Role.REPLICA || r.replica() == null) {
        continue;
      }
      Vm vm = host.get(r.name());
      vm.operationLock().lock();
      try {
        points.recoverPending(vm);
        points.reconcile(vm);
      } catch (IOException | RuntimeException e) {
        log.error("[{}] recovery of replica {} failed; its next apply or rollback will try again",
            host.site(), r.name(), e);
      } finally {
        vm.operationLock().unlock();
      }
    }
  }

  private static void deleteStaged(Vm vm, long generation) throws IOException {
    Path incoming = vm.dir().resolve("incoming");
    for (VirtualDisk d : vm.disks()) {
      Files.deleteIfExists(incoming.resolve(HrlFormat.fileName(d.name(), generation)));
    }
  }

  public VmRecord completeInitial(String vmName) throws IOException {
    Vm vm = host.getReplica(vmName);
    ReplicaState s = vm.record().replica();
    host.update(vm, r -> r.withReplica(new ReplicaState(s.sourceSite(), true,
        s.appliedGeneration(), s.pointTime(), s.points())));
    Reversal.forget(vm);
    log.info("[{}] replica {} is consistent at generation {}", host.site(), vmName,
        s.appliedGeneration());
    return vm.record();
  }

  public void delete(String vmName) throws IOException {
    if (host.find(vmName).isPresent()) {
      host.getReplica(vmName);
      host.delete(vmName);
    }
  }
}
