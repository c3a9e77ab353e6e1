package io.siterecovery.agent.testclone;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.DurableFiles;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages.TestCleanupReport;
import io.siterecovery.agent.api.AgentMessages.TestCloneInfo;
import io.siterecovery.agent.disk.Overlay;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.nbd.BlockDevice;
import io.siterecovery.agent.nbd.ExportResolver;
import io.siterecovery.agent.replica.ReplicaStore;
import io.siterecovery.agent.vm.ReplicaWatcher;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.RecoveryPointInfo;
import io.siterecovery.agent.vm.VmRecord.ReplicaState;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The test VMs of this site, one per replica at most, under {@code <data>/test-clones/<vm>/}. A
 * test VM {@code <vm>-test} is made of one {@link Overlay} per replica disk, so making it copies
 * nothing but the undo data between its point and the replica's, and its writes never reach the
 * replica. While it lives, every apply to the replica first keeps in the overlays the point's
 * contents of the ranges it overwrites; rewrites of the replica outside apply (a resync, a
 * roll-back) are refused until the test is cleaned up.
 */
public final class TestClones implements ReplicaWatcher, ExportResolver, Closeable {
  private static final Logger log = LoggerFactory.getLogger(TestClones.class);
  static final String SUFFIX = "-test";
  private static final String RECORD_FILE = "clone.json";

  /** What {@code clone.json} keeps; written last, so a directory without it is an unfinished make. */
  record CloneRecord(String vm, String testVm, long generation, Instant pointTime, String key,
      Instant createdAt) {}

  private record Clone(CloneRecord record, Path dir, Map<String, Overlay> disks) {}

  private final VmHost host;
  private final Path root;
  private final Map<String, Clone> clones = new ConcurrentHashMap<>();
  private final BiFunction<String, String, String> exportUri;
  private volatile Consumer<String> disconnectExportsOf = testVm -> { };

  /**
   * Loads the test VMs a previous run left. {@code exportUri} gives the NBD URI of an export
   * ({@code vm}, {@code disk}) for the reports.
   */
  public TestClones(VmHost host, BiFunction<String, String, String> exportUri) throws IOException {
    this.host = host;
    this.root = Files.createDirectories(host.dataDir().resolve("test-clones"));
    this.exportUri = exportUri;
    try (Stream<Path> dirs = Files.list(root)) {
      for (Path dir : dirs.filter(Files::isDirectory).toList()) {
        load(dir);
      }
    }
  }

  private void load(Path dir) throws IOException {
    Path file = dir.resolve(RECORD_FILE);
    Optional<Vm> replica = Optional.empty();
    if (Files.exists(file)) {
      CloneRecord r = Json.MAPPER.readValue(file.toFile(), CloneRecord.class);
      replica = host.find(r.vm()).filter(v -> v.record().role() == VmRecord.Role.REPLICA);
      if (replica.isPresent()) {
        clones.put(r.vm(), open(r, dir, replica.get()));
        log.info("[{}] loaded test VM {} at generation {}", host.site(), r.testVm(),
            r.generation());
        return;
      }
    }
    log.warn("[{}] removing {}: {}", host.site(), dir, Files.exists(file)
        ? "its replica is gone" : "a test VM whose making was interrupted");
    DurableFiles.deleteTree(dir);
  }

  private static Clone open(CloneRecord r, Path dir, Vm replica) throws IOException {
    Map<String, Overlay> disks = new LinkedHashMap<>();
    try {
      for (VirtualDisk d : replica.disks()) {
        disks.put(d.name(), Overlay.open(dir, d));
      }
    } catch (IOException | RuntimeException e) {
      closeAll(disks.values());
      throw e;
    }
    return new Clone(r, dir, disks);
  }

  /** Connects cleanup to the NBD server, which drops the test VM's clients. */
  public void onCleanup(Consumer<String> disconnectExportsOfVm) {
    this.disconnectExportsOf = disconnectExportsOfVm;
  }

  public List<TestCloneInfo> list() {
    return clones.values().stream().map(this::info)
        .sorted(Comparator.comparing(TestCloneInfo::vm)).toList();
  }

  /**
   * Makes the test VM of replica {@code vmName} at retained point {@code generation}: the point's
   * contents of every range the replica has overwritten since come from its undo data, the rest
   * is read from the replica as it is. Under the same {@code key} and point, a repeated request
   * answers the test VM already made.
   */
  public TestCloneInfo create(String vmName, Long generation, String key) throws IOException {
    if (generation == null || key == null || key.isBlank() || key.length() > 100) {
      throw new AgentException(ErrorCode.BAD_REQUEST,
          "a test VM needs a generation and a key of at most 100 characters");
    }
    Vm vm = host.get(vmName);
    String testVm = vmName + SUFFIX;
    vm.operationLock().lock();
    try {
      Clone existing = clones.get(vmName);
      if (existing != null) {
        CloneRecord r = existing.record();
        if (r.key().equals(key) && r.generation() == generation) {
          return info(existing);
        }
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vmName + " already has a test"
            + " VM " + r.testVm() + " (at generation " + r.generation() + ", since "
            + r.createdAt() + ", made by another test failover); clean that test up first");
      }
      ReplicaState state = requireTestable(vm);
      if (host.find(testVm).isPresent()) {
        throw new AgentException(ErrorCode.VM_EXISTS, "site " + host.site()
            + " already has a VM named " + testVm);
      }
      RecoveryPointInfo point = state.points().stream()
          .filter(p -> p.generation() == generation).findFirst()
          .orElseThrow(() -> new AgentException(ErrorCode.INVALID_STATE, "generation "
              + generation + " is not a retained recovery point of " + vmName + " (retained: "
              + state.points().stream().map(RecoveryPointInfo::generation).toList() + ")"));
      long started = System.nanoTime();
      Path dir = root.resolve(vmName);
      DurableFiles.deleteTree(dir);
      Files.createDirectories(dir);
      CloneRecord record = new CloneRecord(vmName, testVm, generation, point.pointTime(), key,
          Instant.now());
      Clone clone = open(record, dir, vm);
      try {
        long undoEntries = ReplicaStore.rewind(vm, clone.disks(), generation);
        for (Overlay o : clone.disks().values()) {
          o.force();
        }
        writeRecord(dir, record);
        clones.put(vmName, clone);
        log.info("[{}] test VM {} made at generation {} (replica at {}; {} ranges from undo data,"
            + " {} bytes) in {} ms", host.site(), testVm, generation, state.appliedGeneration(),
            undoEntries, scratchBytes(clone), (System.nanoTime() - started) / 1_000_000);
        return info(clone);
      } catch (IOException | RuntimeException e) {
        closeAll(clone.disks().values());
        DurableFiles.deleteTree(dir);
        throw e;
      }
    } finally {
      vm.operationLock().unlock();
    }
  }

  private ReplicaState requireTestable(Vm vm) {
    ReplicaState s = vm.record().replica();
    if (vm.record().role() != VmRecord.Role.REPLICA || s == null) {
      throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vm.name() + " on " + host.site()
          + " is not a replica");
    }
    if (!s.initialComplete() || s.pointTime() == null || s.points().isEmpty()) {
      throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vm.name() + " holds no "
          + "recovery point yet (initial replication or a resync is not finished)");
    }
    if (vm.record().power() == VmRecord.Power.RUNNING) {
      throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vm.name() + " is running "
          + "(failed over); a test VM is made from a replica that is not");
    }
    return s;
  }

  @Override
  public void beforeApply(Vm replica, Map<VirtualDisk, Path> logs) throws IOException {
    Clone clone = clones.get(replica.name());
    if (clone == null) {
      return;
    }
    for (Map.Entry<VirtualDisk, Path> e : logs.entrySet()) {
      Overlay overlay = clone.disks().get(e.getKey().name());
      HrlReader.visitVerifying(e.getValue(),
          rec -> overlay.preserveFromReplica(rec.offset(), rec.length()));
    }
    for (Overlay o : clone.disks().values()) {
      o.force(); // the point's contents are safe before the replica's are overwritten
    }
  }

  @Override
  public void beforeRewrite(Vm replica, String what) {
    Clone clone = clones.get(replica.name());
    if (clone != null) {
      throw new AgentException(ErrorCode.TEST_VM_ACTIVE, "replica " + replica.name() + " has a "
          + "test VM (" + clone.record().testVm() + ", since " + clone.record().createdAt()
          + "); " + what + " of the replica waits until that test is cleaned up");
    }
  }

  @Override
  public void beforeDelete(Vm replica) throws IOException {
    if (clones.containsKey(replica.name())) {
      log.warn("[{}] replica {} is being deleted: its test VM goes with it", host.site(),
          replica.name());
      delete(replica.name());
    }
  }

  /**
   * Deletes the test VM of {@code vmName}: drops its NBD clients, removes its scratch data and
   * its entry, then looks for anything left (an export still offered, a file, the entry) and
   * reports it. Nothing to delete is not an error.
   */
  public TestCleanupReport delete(String vmName) throws IOException {
    String testVm = vmName + SUFFIX;
    Path dir = root.resolve(vmName);
    Optional<Vm> replica = host.find(vmName);
    replica.ifPresent(v -> v.operationLock().lock());
    try {
      Clone clone = clones.remove(vmName);
      if (clone != null) {
        clone.disks().values().forEach(Overlay::setOffline);
        disconnectExportsOf.accept(testVm);
        closeAll(clone.disks().values());
      }
      boolean existed = clone != null || Files.exists(dir);
      DurableFiles.deleteTree(dir);
      List<String> remaining = new ArrayList<>();
      exportNames().stream().filter(e -> e.startsWith(testVm + "/"))
          .forEach(e -> remaining.add("NBD export " + e));
      if (Files.exists(dir)) {
        try (Stream<Path> left = Files.walk(dir)) {
          left.forEach(p -> remaining.add("file " + p));
        }
      }
      if (clones.containsKey(vmName)) {
        remaining.add("inventory entry " + testVm);
      }
      if (existed) {
        log.info("[{}] test VM {} cleaned up{}", host.site(), testVm,
            remaining.isEmpty() ? "; nothing remains" : "; remaining: " + remaining);
      }
      return new TestCleanupReport(vmName, testVm, existed, remaining);
    } finally {
      replica.ifPresent(v -> v.operationLock().unlock());
    }
  }

  @Override
  public Optional<BlockDevice> openExport(String exportName) {
    int slash = exportName.indexOf('/');
    if (slash < 0 || !exportName.substring(0, slash).endsWith(SUFFIX)) {
      return Optional.empty();
    }
    String testVm = exportName.substring(0, slash);
    Clone clone = clones.get(testVm.substring(0, testVm.length() - SUFFIX.length()));
    return clone == null ? Optional.empty()
        : Optional.ofNullable(clone.disks().get(exportName.substring(slash + 1)));
  }

  @Override
  public List<String> exportNames() {
    return clones.values().stream().flatMap(c -> c.disks().keySet().stream()
        .map(d -> c.record().testVm() + "/" + d)).sorted().toList();
  }

  private TestCloneInfo info(Clone c) {
    CloneRecord r = c.record();
    return new TestCloneInfo(r.vm(), r.testVm(), r.generation(), r.pointTime(), r.key(),
        r.createdAt(), c.disks().keySet().stream().map(d -> exportUri.apply(r.testVm(), d))
            .toList(), scratchBytes(c));
  }

  private static long scratchBytes(Clone c) {
    return c.disks().values().stream().mapToLong(Overlay::scratchBytes).sum();
  }

  private static void writeRecord(Path dir, CloneRecord record) throws IOException {
    DurableFiles.writeJson(dir.resolve(RECORD_FILE), record);
  }


  /** Makes the test VMs' data durable and closes their files; they load again on restart. */
  @Override
  public void close() throws IOException {
    for (Clone c : clones.values()) {
      for (Overlay o : c.disks().values()) {
        o.force();
      }
      closeAll(c.disks().values());
    }
  }

  private static void closeAll(Iterable<Overlay> overlays) throws IOException {
    IOException first = null;
    for (Overlay o : overlays) {
      try {
        o.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }

}
