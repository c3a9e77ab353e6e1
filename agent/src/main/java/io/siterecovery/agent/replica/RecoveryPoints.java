package io.siterecovery.agent.replica;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.FaultInjection;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.undo.UndoCorruptException;
import io.siterecovery.agent.undo.UndoFormat;
import io.siterecovery.agent.undo.UndoReader;
import io.siterecovery.agent.undo.UndoWriter;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord.RecoveryPointInfo;
import io.siterecovery.agent.vm.VmRecord.ReplicaState;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The recovery points of replicas and their undo journal ({@code <vm>/undo/}, format in
 * docs/undo-journal.md). The undo file of generation g holds, per disk, the contents the apply of
 * g overwrote; the points a replica can return to are the generations whose undo chain back from
 * the applied one is complete. Callers hold the VM's operation lock.
 */
final class RecoveryPoints {
  private static final Logger log = LoggerFactory.getLogger(RecoveryPoints.class);
  static final String UNDO_DIR = "undo";
  static final String ROLLBACK_MARKER = "rollback-target";

  private final VmHost host;

  RecoveryPoints(VmHost host) {
    this.host = host;
  }

  /** The retained points; a replica persisted before points existed has just its applied one. */
  static List<RecoveryPointInfo> points(ReplicaState s) {
    if (s.points().isEmpty() && s.appliedGeneration() > 0 && s.pointTime() != null) {
      return List.of(new RecoveryPointInfo(s.appliedGeneration(), s.pointTime(), false, 0));
    }
    return s.points();
  }

  private static Path undoDir(Vm vm) {
    return vm.dir().resolve(UNDO_DIR);
  }

  static Path undoFile(Vm vm, VirtualDisk d, long generation) {
    return undoDir(vm).resolve(UndoFormat.fileName(d.name(), generation));
  }

  private static boolean allDisksHaveUndo(Vm vm, long generation) {
    return vm.disks().stream().allMatch(d -> Files.exists(undoFile(vm, d, generation)));
  }

  /**
   * Saves, for every disk, the contents each record of its log will overwrite, then seals and
   * fsyncs the undo files and only then gives them their final names. Each log is verified while
   * it is read; a corrupt one throws {@link io.siterecovery.agent.hrl.HrlCorruptException}
   * before anything is kept. Until every disk's file has
   * its final name, nothing of the generation has been applied. Returns the files' total size.
   */
  long capture(Vm vm, long generation, Map<VirtualDisk, Path> logs) throws IOException {
    Path dir = Files.createDirectories(undoDir(vm));
    List<UndoWriter> writers = new ArrayList<>();
    List<VirtualDisk> disks = new ArrayList<>();
    try {
      for (Map.Entry<VirtualDisk, Path> e : logs.entrySet()) {
        VirtualDisk d = e.getKey();
        Path part = dir.resolve(UndoFormat.partName(d.name(), generation));
        Files.deleteIfExists(part);
        UndoWriter w = UndoWriter.create(part, d, generation);
        writers.add(w);
        disks.add(d);
        HrlReader.visitVerifying(e.getValue(), rec -> w.save(rec.offset(), rec.length()));
        w.seal();
        FaultInjection.reached("undo-file-sealed");
      }
      long bytes = 0;
      for (int i = 0; i < writers.size(); i++) {
        UndoWriter w = writers.get(i);
        Files.move(w.path(), undoFile(vm, disks.get(i), generation),
            StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        bytes += w.sizeBytes();
      }
      forceDir(dir);
      return bytes;
    } catch (IOException | RuntimeException e) {
      // nothing has been applied yet: the partial journal of this generation is worthless
      for (UndoWriter w : writers) {
        w.close();
      }
      try {
        deleteUndo(vm, generation);
      } catch (IOException suppressed) {
        e.addSuppressed(suppressed);
      }
      throw e;
    }
  }

  long undoBytes(Vm vm, long generation) throws IOException {
    long total = 0;
    for (VirtualDisk d : vm.disks()) {
      Path f = undoFile(vm, d, generation);
      if (Files.exists(f)) {
        total += Files.size(f);
      }
    }
    return total;
  }

  /**
   * Writes back what generation {@code generation} overwrote on every disk that has its undo
   * file, and makes the images durable. With {@code requireAll}, every disk must have one.
   */
  private void restore(Vm vm, long generation, boolean requireAll, String crashStep)
      throws IOException {
    for (VirtualDisk d : vm.disks()) {
      Path f = undoFile(vm, d, generation);
      if (!Files.exists(f)) {
        if (requireAll) {
          throw new AgentException(ErrorCode.INVALID_STATE, "undo data of generation "
              + generation + " of " + vm.name() + "/" + d.name() + " is missing");
        }
        continue;
      }
      try {
        UndoReader.restore(f, d, crashStep);
      } catch (UndoCorruptException e) {
        throw new AgentException(ErrorCode.LOG_CORRUPT, "undo data of generation " + generation
            + " of " + vm.name() + "/" + d.name() + " is corrupt (" + e.getMessage()
            + "); the replica cannot go back to generation " + (generation - 1)
            + " and needs a resync", e);
      }
      d.forceImage();
    }
  }

  void deleteUndo(Vm vm, long generation) throws IOException {
    for (VirtualDisk d : vm.disks()) {
      Files.deleteIfExists(undoDir(vm).resolve(UndoFormat.partName(d.name(), generation)));
      Files.deleteIfExists(undoFile(vm, d, generation));
    }
  }

  /** After an apply failed part way in this process: back to the previous point at once. */
  void undoFailedApply(Vm vm, long generation, Exception cause) {
    try {
      restore(vm, generation, false, null);
      deleteUndo(vm, generation);
      log.warn("[{}] apply of generation {} of {} failed ({}); rolled back to generation {}",
          host.site(), generation, vm.name(), cause.toString(), generation - 1);
    } catch (IOException | RuntimeException e) {
      cause.addSuppressed(e);
      log.error("[{}] apply of generation {} of {} failed and its rollback too; the next apply "
          + "or restart tries again", host.site(), generation, vm.name(), e);
    }
  }

  /**
   * Finishes what a crash (or a failure in this process) interrupted: drops unfinished undo
   * files, rolls back a generation whose undo is complete but which is not recorded as applied,
   * and completes an interrupted rollback.
   */
  void recoverPending(Vm vm) throws IOException {
    Path dir = undoDir(vm);
    if (!Files.isDirectory(dir)) {
      return;
    }
    long applied = vm.record().replica().appliedGeneration();
    List<Long> pending = new ArrayList<>();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path p : files.toList()) {
        String name = p.getFileName().toString();
        if (name.endsWith(UndoFormat.PART_SUFFIX) || name.endsWith(".tmp")) {
          Files.delete(p); // an apply never starts before every undo file is complete
          continue;
        }
        for (VirtualDisk d : vm.disks()) {
          long g = UndoFormat.generationOf(d.name(), name);
          if (g > applied && !pending.contains(g)) {
            pending.add(g);
          }
        }
      }
    }
    pending.sort((a, b) -> Long.compare(b, a));
    for (long g : pending) {
      restore(vm, g, false, "recover-entry");
      deleteUndo(vm, g);
      log.warn("[{}] {}: generation {} was not recorded as applied; restored generation {} "
          + "from its undo data", host.site(), vm.name(), g, g - 1);
    }
    Path marker = dir.resolve(ROLLBACK_MARKER);
    if (Files.exists(marker)) {
      long target = Long.parseLong(Files.readString(marker, StandardCharsets.US_ASCII).trim());
      ReplicaState s = vm.record().replica();
      if (target < s.appliedGeneration()
          && points(s).stream().anyMatch(p -> p.generation() == target)) {
        log.warn("[{}] {}: finishing a rollback to generation {} interrupted at generation {}",
            host.site(), vm.name(), target, s.appliedGeneration());
        rollbackTo(vm, target);
      } else {
        finishRollback(vm, target);
      }
    }
  }

  /**
   * On agent start: checks that each retained point still has its undo chain (drops the points
   * that lost it) and deletes undo files no retained point needs.
   */
  void reconcile(Vm vm) throws IOException {
    ReplicaState s = vm.record().replica();
    List<RecoveryPointInfo> pts = points(s);
    int first = pts.size() - 1;
    while (first > 0 && pts.get(first - 1).generation() == pts.get(first).generation() - 1
        && allDisksHaveUndo(vm, pts.get(first).generation())) {
      first--;
    }
    if (first > 0) {
      log.warn("[{}] {}: undo data missing below generation {}; dropping {} older points",
          host.site(), vm.name(), pts.get(first).generation(), first);
      persist(vm, s.appliedGeneration(), s.pointTime(), keepFrom(pts, first));
    }
    deleteUnneeded(vm);
  }

  /** Drops points older than the retention (the newest always stays) and their undo files. */
  void prune(Vm vm, Long retentionSeconds) throws IOException {
    ReplicaState s = vm.record().replica();
    List<RecoveryPointInfo> pts = points(s);
    if (retentionSeconds != null && pts.size() > 1) {
      Instant newest = pts.get(pts.size() - 1).pointTime();
      if (newest != null) {
        Instant cutoff = newest.minusSeconds(retentionSeconds);
        int first = 0;
        while (first < pts.size() - 1 && (pts.get(first).pointTime() == null
            || pts.get(first).pointTime().isBefore(cutoff))) {
          first++;
        }
        if (first > 0) {
          persist(vm, s.appliedGeneration(), s.pointTime(), keepFrom(pts, first));
          FaultInjection.reached("prune-recorded");
          log.debug("[{}] {}: pruned {} recovery points older than {}", host.site(), vm.name(),
              first, cutoff);
        }
      }
    }
    deleteUnneeded(vm);
  }

  /** Forgets every point but the current one, e.g. when the replica is rewritten outside apply. */
  void discardHistory(Vm vm) throws IOException {
    ReplicaState s = vm.record().replica();
    List<RecoveryPointInfo> pts = points(s);
    if (pts.size() > 1) {
      persist(vm, s.appliedGeneration(), s.pointTime(), keepFrom(pts, pts.size() - 1));
      log.warn("[{}] {}: replica rewritten outside log apply; older recovery points dropped",
          host.site(), vm.name());
    }
    deleteUnneeded(vm);
  }

  /** The undo file of generation g is needed while point g - 1 is retained and g is applied. */
  private void deleteUnneeded(Vm vm) throws IOException {
    Path dir = undoDir(vm);
    if (!Files.isDirectory(dir)) {
      return;
    }
    ReplicaState s = vm.record().replica();
    List<RecoveryPointInfo> pts = points(s);
    long oldest = pts.isEmpty() ? Long.MAX_VALUE : pts.get(0).generation();
    try (Stream<Path> files = Files.list(dir)) {
      for (Path p : files.toList()) {
        for (VirtualDisk d : vm.disks()) {
          long g = UndoFormat.generationOf(d.name(), p.getFileName().toString());
          if (g >= 0 && g <= oldest && g <= s.appliedGeneration()) {
            Files.deleteIfExists(p);
          }
        }
      }
    }
  }

  private static List<RecoveryPointInfo> keepFrom(List<RecoveryPointInfo> pts, int first) {
    List<RecoveryPointInfo> kept = new ArrayList<>(pts.subList(first, pts.size()));
    RecoveryPointInfo oldest = kept.get(0);
    kept.set(0, new RecoveryPointInfo(oldest.generation(), oldest.pointTime(),
        oldest.appConsistent(), 0));
    return kept;
  }

  private void persist(Vm vm, long applied, Instant pointTime, List<RecoveryPointInfo> pts)
      throws IOException {
    host.update(vm, r -> {
      ReplicaState s = r.replica();
      return r.withReplica(new ReplicaState(s.sourceSite(), s.initialComplete(), applied,
          pointTime, pts));
    });
  }

  /**
   * Rolls the replica back to a retained point, one generation at a time: each step restores the
   * undo data of the applied generation on every disk, forces the images, records the previous
   * generation as applied and then deletes that undo data. A marker file names the target, so a
   * crash in the middle is finished on restart.
   */
  void rollback(Vm vm, long target) throws IOException {
    ReplicaState s = vm.record().replica();
    if (target == s.appliedGeneration()) {
      return;
    }
    List<RecoveryPointInfo> pts = points(s);
    if (target > s.appliedGeneration() || pts.stream().noneMatch(p -> p.generation() == target)) {
      throw new AgentException(ErrorCode.INVALID_STATE, "generation " + target + " is not a "
          + "retained recovery point of replica " + vm.name() + " (retained: "
          + pts.stream().map(RecoveryPointInfo::generation).toList() + ")");
    }
    Path dir = Files.createDirectories(undoDir(vm));
    Path tmp = dir.resolve(ROLLBACK_MARKER + ".tmp");
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      ch.write(StandardCharsets.US_ASCII.encode(target + "\n"));
      ch.force(true);
    }
    Files.move(tmp, dir.resolve(ROLLBACK_MARKER), StandardCopyOption.ATOMIC_MOVE,
        StandardCopyOption.REPLACE_EXISTING);
    forceDir(dir);
    rollbackTo(vm, target);
  }

  private void rollbackTo(Vm vm, long target) throws IOException {
    while (true) {
      ReplicaState s = vm.record().replica();
      long g = s.appliedGeneration();
      if (g <= target) {
        break;
      }
      List<RecoveryPointInfo> pts = points(s);
      RecoveryPointInfo previous = pts.size() >= 2 ? pts.get(pts.size() - 2) : null;
      if (previous == null || previous.generation() != g - 1) {
        throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vm.name()
            + " has no recovery point before generation " + g);
      }
      restore(vm, g, true, "rollback-entry");
      persist(vm, g - 1, previous.pointTime(), pts.subList(0, pts.size() - 1));
      FaultInjection.reached("rollback-recorded");
      deleteUndo(vm, g);
      log.info("[{}] {}: rolled back generation {}", host.site(), vm.name(), g);
    }
    finishRollback(vm, target);
  }

  /** Staged logs above the target can never be applied after the rollback; then the marker goes. */
  private static void finishRollback(Vm vm, long target) throws IOException {
    Path incoming = vm.dir().resolve("incoming");
    if (Files.isDirectory(incoming)) {
      try (Stream<Path> files = Files.list(incoming)) {
        for (Path p : files.toList()) {
          for (VirtualDisk d : vm.disks()) {
            if (HrlFormat.generationOf(d.name(), p.getFileName().toString()) > target) {
              Files.deleteIfExists(p);
            }
          }
        }
      }
    }
    Files.deleteIfExists(undoDir(vm).resolve(ROLLBACK_MARKER));
  }

  static void forceDir(Path dir) throws IOException {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    }
  }
}
