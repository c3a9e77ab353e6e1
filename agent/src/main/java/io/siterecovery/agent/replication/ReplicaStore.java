package io.siterecovery.agent.replication;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.HrlCorruptException;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.ReplicaState;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The secondary side: receives the initial copy and sealed logs, verifies each log before it is
 * kept, and applies a generation to all disks of the VM in sequence order.
 */
public final class ReplicaStore {
  private static final Logger log = LoggerFactory.getLogger(ReplicaStore.class);

  private final VmHost host;

  public ReplicaStore(VmHost host) {
    this.host = host;
  }

  public VmRecord create(String vm, String sourceSite, List<VmRecord.DiskSpec> disks)
      throws IOException {
    if (sourceSite == null || disks == null || disks.isEmpty()) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "a replica needs a source site and disks");
    }
    return host.createReplica(vm, disks, sourceSite).record();
  }

  private Vm replica(String name) {
    Vm vm = host.get(name);
    if (vm.record().role() != VmRecord.Role.REPLICA || vm.record().replica() == null) {
      throw new AgentException(ErrorCode.INVALID_STATE,
          "VM " + name + " on " + host.site() + " is not a replica");
    }
    return vm;
  }

  public long receiveRanges(String vmName, String diskName, InputStream frames) throws IOException {
    Vm vm = replica(vmName);
    VirtualDisk disk = vm.disk(diskName);
    long written = RangeStream.receive(frames, disk);
    disk.forceImage(); // the caller's heartbeat will say these bytes are done
    return written;
  }

  /** Stores a log in the incoming folder only once it verifies; a bad transfer is retried. */
  public void stageLog(String vmName, String diskName, long generation, InputStream body)
      throws IOException {
    Vm vm = replica(vmName);
    VirtualDisk disk = vm.disk(diskName);
    Path incoming = Files.createDirectories(vm.dir().resolve("incoming"));
    Path part = incoming.resolve(HrlFormat.fileName(diskName, generation) + ".part");
    try (OutputStream out = Files.newOutputStream(part, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      body.transferTo(out);
    }
    try {
      HrlReader.Scan scan = HrlReader.verifySealed(part);
      if (!scan.header().diskId().equals(disk.id()) || scan.header().generation() != generation) {
        throw new HrlCorruptException("log is for disk " + scan.header().diskId()
            + " generation " + scan.header().generation());
      }
    } catch (HrlCorruptException e) {
      Files.deleteIfExists(part);
      throw new AgentException(ErrorCode.TRANSFER_CORRUPT, "log " + vmName + "/" + diskName
          + " generation " + generation + " failed verification on arrival: " + e.getMessage());
    }
    try (var ch = java.nio.channels.FileChannel.open(part, StandardOpenOption.WRITE)) {
      ch.force(true);
    }
    Files.move(part, incoming.resolve(HrlFormat.fileName(diskName, generation)),
        StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
  }

  /**
   * Applies one generation to every disk. Re-applying a generation is harmless (logs hold full
   * data), so a crash before the applied generation is persisted only repeats this step.
   */
  public VmRecord apply(String vmName, long generation, Instant pointTime) throws IOException {
    Vm vm = replica(vmName);
    vm.operationLock().lock();
    try {
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
      for (VirtualDisk d : vm.disks()) {
        if (!Files.exists(incoming.resolve(HrlFormat.fileName(d.name(), generation)))) {
          throw new AgentException(ErrorCode.INVALID_STATE, "log generation " + generation
              + " of " + vmName + "/" + d.name() + " has not arrived");
        }
      }
      long records = 0;
      for (VirtualDisk d : vm.disks()) {
        Path logFile = incoming.resolve(HrlFormat.fileName(d.name(), generation));
        try {
          records += HrlReader.applySealed(logFile, rec -> {
            if (rec.isZero()) {
              d.zeroAt(rec.offset(), rec.length());
            } else {
              d.writeAt(rec.offset(), rec.data());
            }
          }).records();
        } catch (HrlCorruptException e) {
          throw new AgentException(ErrorCode.LOG_CORRUPT, "staged log " + logFile.getFileName()
              + " of " + vmName + " is corrupt: " + e.getMessage());
        }
        d.forceImage();
      }
      host.update(vm, r -> r.withReplica(new ReplicaState(state.sourceSite(),
          state.initialComplete(), generation, pointTime)));
      deleteStaged(vm, generation);
      log.debug("[{}] applied generation {} of {} ({} records)", host.site(), generation, vmName,
          records);
      return vm.record();
    } finally {
      vm.operationLock().unlock();
    }
  }

  private static void deleteStaged(Vm vm, long generation) throws IOException {
    Path incoming = vm.dir().resolve("incoming");
    for (VirtualDisk d : vm.disks()) {
      Files.deleteIfExists(incoming.resolve(HrlFormat.fileName(d.name(), generation)));
    }
  }

  public VmRecord completeInitial(String vmName) throws IOException {
    Vm vm = replica(vmName);
    ReplicaState s = vm.record().replica();
    host.update(vm, r -> r.withReplica(new ReplicaState(s.sourceSite(), true,
        s.appliedGeneration(), s.pointTime())));
    log.info("[{}] replica {} is consistent at generation {}", host.site(), vmName,
        s.appliedGeneration());
    return vm.record();
  }

  public void delete(String vmName) throws IOException {
    if (host.find(vmName).isPresent()) {
      replica(vmName);
      host.delete(vmName);
    }
  }
}
