package io.siterecovery.agent.replica;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.DurableFiles;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages.PromoteResult;
import io.siterecovery.agent.disk.Overlay;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.vm.ChangedRanges;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.Power;
import io.siterecovery.agent.vm.VmRecord.RecoveryPointInfo;
import io.siterecovery.agent.vm.VmRecord.ReplicaState;
import io.siterecovery.agent.vm.VmRecord.Role;
import io.siterecovery.agent.vm.VmRecord.SourceProtection;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A replica running as the VM after a failover. It runs on one {@link Overlay} per disk at the
 * chosen point ({@code vms/<vm>/run/}), so the replica's disks stay at the generation they had
 * applied until the failover is committed: a cancel or a change of recovery point drops the
 * layers and leaves the replica as it was, able to follow its source's logs without a resync,
 * and any retained point, older or newer than the one running, can be started next.
 *
 * <p>A commit ({@link #promote}) merges the layers into the disks, keeps which ranges they
 * changed ({@link ChangedRanges}) and starts tracking the disks'
 * writes, so that reverse replication sends exactly those ranges and then the tracked logs.
 */
public final class ReplicaRuns implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(ReplicaRuns.class);
  private static final String RUN_DIR = "run";
  private static final String RECORD_FILE = "run.json";

  /** What {@code run.json} keeps; written last, so a run directory without it never started. */
  record RunRecord(String vm, long generation, Instant pointTime, String key, Instant startedAt) {}

  private record Run(RunRecord record, Path dir, Map<String, Overlay> disks) {}

  private final VmHost host;
  private final Map<String, Run> runs = new ConcurrentHashMap<>();

  /** Brings back the runs a previous process left, before NBD serves anything. */
  public ReplicaRuns(VmHost host) throws IOException {
    this.host = host;
    for (VmRecord r : host.list()) {
      Vm vm = host.get(r.name());
      Path dir = vm.dir().resolve(RUN_DIR);
      if (!Files.isDirectory(dir)) {
        continue;
      }
      Path file = dir.resolve(RECORD_FILE);
      if (r.role() == Role.REPLICA && Files.exists(file)) {
        RunRecord record = Json.MAPPER.readValue(file.toFile(), RunRecord.class);
        Run run = open(record, dir, vm);
        runs.put(r.name(), run);
        vm.setFront(run.disks());
        log.info("[{}] replica {} runs again at generation {} (failover not yet committed)",
            host.site(), r.name(), record.generation());
      } else {
        DurableFiles.deleteTree(dir); // an unfinished start, or the leftovers of a finished commit
      }
    }
  }

  private static Run open(RunRecord record, Path dir, Vm vm) throws IOException {
    Map<String, Overlay> disks = new LinkedHashMap<>();
    try {
      for (VirtualDisk d : vm.disks()) {
        disks.put(d.name(), Overlay.open(dir, d));
      }
    } catch (IOException | RuntimeException e) {
      for (Overlay o : disks.values()) {
        o.close();
      }
      throw e;
    }
    return new Run(record, dir, disks);
  }

  /**
   * Starts the replica as the VM at retained point {@code generation}, without changing the
   * replica's disks: the point's contents of what was applied after it come from undo data.
   * Under the same {@code key} and point a repeated start answers the running VM.
   */
  public VmRecord start(String vmName, Long generation, String key) throws IOException {
    if (generation == null || key == null || key.isBlank() || key.length() > 100) {
      throw new AgentException(ErrorCode.BAD_REQUEST,
          "starting a replica needs a generation and a key of at most 100 characters");
    }
    Vm vm = host.getReplica(vmName);
    vm.operationLock().lock();
    try {
      Run existing = runs.get(vmName);
      if (existing != null) {
        RunRecord r = existing.record();
        if (r.key().equals(key) && r.generation() == generation) {
          return vm.record();
        }
        throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vmName + " already runs "
            + "at generation " + r.generation() + " since " + r.startedAt() + "; stop it first");
      }
      ReplicaState state = vm.record().replica();
      if (!state.initialComplete() || state.pointTime() == null) {
        throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vmName + " holds no "
            + "recovery point (initial replication or a resync is not finished)");
      }
      RecoveryPointInfo point = RecoveryPoints.points(state).stream()
          .filter(p -> p.generation() == generation).findFirst()
          .orElseThrow(() -> new AgentException(ErrorCode.INVALID_STATE, "generation "
              + generation + " is not a retained recovery point of " + vmName + " (retained: "
              + RecoveryPoints.points(state).stream().map(RecoveryPointInfo::generation).toList()
              + ")"));
      host.replicaWatcher().beforeRewrite(vm, "a failover");
      long started = System.nanoTime();
      Path dir = vm.dir().resolve(RUN_DIR);
      DurableFiles.deleteTree(dir);
      Files.createDirectories(dir);
      RunRecord record = new RunRecord(vmName, generation, point.pointTime(), key, Instant.now());
      Run run = open(record, dir, vm);
      try {
        long ranges = ReplicaStore.rewind(vm, run.disks(), generation);
        for (Overlay o : run.disks().values()) {
          o.force();
        }
        DurableFiles.writeJson(dir.resolve(RECORD_FILE), record);
        runs.put(vmName, run);
        vm.setFront(run.disks());
        host.setPower(vm, Power.RUNNING);
        log.info("[{}] replica {} started at generation {} (replica at {}; {} ranges from undo "
            + "data) in {} ms; its writes stay in {} until a commit", host.site(), vmName,
            generation, state.appliedGeneration(), ranges,
            (System.nanoTime() - started) / 1_000_000, dir);
        return vm.record();
      } catch (IOException | RuntimeException e) {
        runs.remove(vmName);
        vm.setFront(null);
        for (Overlay o : run.disks().values()) {
          o.close();
        }
        DurableFiles.deleteTree(dir);
        throw e;
      }
    } finally {
      vm.operationLock().unlock();
    }
  }

  /**
   * Stops a replica started by {@link #start} and drops what it wrote: the replica is again at
   * the generation it had applied, exactly, and can follow its source. Idempotent.
   */
  public VmRecord stop(String vmName) throws IOException {
    Vm vm = host.getReplica(vmName);
    vm.operationLock().lock();
    try {
      host.setPower(vm, Power.OFF);
      Run run = runs.remove(vmName);
      vm.setFront(null);
      if (run != null) {
        long written = run.disks().values().stream().mapToLong(Overlay::scratchBytes).sum();
        for (Overlay o : run.disks().values()) {
          o.setOffline();
          o.close();
        }
        DurableFiles.deleteTree(run.dir());
        log.info("[{}] replica {} stopped; what it ran with ({} bytes apart from the replica) is "
            + "dropped, the replica is at generation {} as before", host.site(), vmName, written,
            vm.record().replica().appliedGeneration());
      }
      return vm.record();
    } finally {
      vm.operationLock().unlock();
    }
  }

  /**
   * Commits a failover: the running layers are merged into the disks with the VM's I/O held
   * meanwhile, the ranges they changed are kept for reverse replication, the disks' writes are
   * tracked from now on, and the VM becomes the primary, replicating (once reprotected) towards
   * its old source. The recovery points and undo data of the replica go. Idempotent.
   */
  public PromoteResult promote(String vmName) throws IOException {
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      if (vm.record().role() == Role.PRIMARY && ChangedRanges.recorded(vm)) {
        return promoted(vm);
      }
      host.getReplica(vmName);
      Run run = runs.get(vmName);
      if (run == null) {
        throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vmName + " is not "
            + "running after a failover; nothing to commit");
      }
      String oldSource = vm.record().replica().sourceSite();
      long started = System.nanoTime();
      host.attachTrackers(vm); // before the merge: no write after it may go untracked
      for (VirtualDisk d : vm.disks()) {
        ChangedRanges.record(vm, d, run.disks().get(d.name()).mergeIntoBase());
      }
      DurableFiles.forceDir(vm.dir());
      host.update(vm, r -> new VmRecord(r.name(), Role.PRIMARY, Power.RUNNING, r.disks(),
          new SourceProtection(oldSource, false), null, r.home()));
      runs.remove(vmName);
      vm.setFront(null); // new clients get the disks; current ones pass through the merged layers
      for (Overlay o : run.disks().values()) {
        o.close();
      }
      DurableFiles.deleteTree(run.dir());
      DurableFiles.deleteTree(vm.dir().resolve(RecoveryPoints.UNDO_DIR));
      DurableFiles.deleteTree(vm.dir().resolve("incoming"));
      PromoteResult result = promoted(vm);
      log.info("[{}] failover of {} committed at generation {} in {} ms: it is the primary now; "
          + "{} bytes changed since the failover point wait for reverse replication to {}",
          host.site(), vmName, run.record().generation(),
          (System.nanoTime() - started) / 1_000_000, result.changedBytes(), oldSource);
      return result;
    } finally {
      vm.operationLock().unlock();
    }
  }

  private static PromoteResult promoted(Vm vm) throws IOException {
    return new PromoteResult(vm.name(), vm.record().protection().targetSite(),
        ChangedRanges.bytes(vm));
  }

  @Override
  public void close() throws IOException {
    for (Run run : runs.values()) {
      for (Overlay o : run.disks().values()) {
        o.force();
        o.close();
      }
    }
  }



}
