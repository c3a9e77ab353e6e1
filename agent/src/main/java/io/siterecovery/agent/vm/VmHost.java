package io.siterecovery.agent.vm;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.ChangeTracker;
import io.siterecovery.agent.nbd.BlockDevice;
import io.siterecovery.agent.nbd.ExportResolver;
import io.siterecovery.agent.vm.VmRecord.DiskSpec;
import io.siterecovery.agent.vm.VmRecord.Power;
import io.siterecovery.agent.vm.VmRecord.Role;
import java.io.Closeable;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.io.UncheckedIOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Consumer;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The VMs of one host and their disks under {@code <data>/vms/<vm>/}: inventory, power state and
 * the NBD export of running VMs as {@code <vm>/<disk>}.
 */
public final class VmHost implements ExportResolver, Closeable {
  private static final Logger log = LoggerFactory.getLogger(VmHost.class);
  private static final String RECORD_FILE = "vm.json";

  private final String site;
  private final Path dataDir;
  private final Path vmsDir;
  private final Map<String, Vm> vms = new ConcurrentHashMap<>();
  private volatile Consumer<String> disconnectClients = vm -> { };
  private volatile ReplicaWatcher replicaWatcher = ReplicaWatcher.NONE;

  public VmHost(String site, Path dataDir) throws IOException {
    this.site = site;
    this.dataDir = dataDir;
    this.vmsDir = dataDir.resolve("vms");
    Files.createDirectories(vmsDir);
    try (Stream<Path> dirs = Files.list(vmsDir)) {
      for (Path dir : dirs.filter(d -> Files.exists(d.resolve(RECORD_FILE))).toList()) {
        VmRecord record = Json.MAPPER.readValue(dir.resolve(RECORD_FILE).toFile(), VmRecord.class);
        Vm vm = open(dir, record);
        vms.put(record.name(), vm);
        if (record.protection() != null) {
          attachTrackers(vm);
        }
        log.info("[{}] loaded VM {} ({}, {}, {} disks)", site, record.name(), record.role(),
            record.power(), record.disks().size());
      }
    }
  }

  public String site() {
    return site;
  }

  /** The agent's data directory: VMs, and local configuration such as quiesce hooks. */
  public Path dataDir() {
    return dataDir;
  }

  /** Lets power-off drop the VM's NBD clients. */
  public void onPowerOff(Consumer<String> disconnectClientsOfVm) {
    this.disconnectClients = disconnectClientsOfVm;
  }

  /** Who must hear of changes to replicas before they happen (test VMs). */
  public void watchReplicas(ReplicaWatcher watcher) {
    this.replicaWatcher = watcher;
  }

  public ReplicaWatcher replicaWatcher() {
    return replicaWatcher;
  }

  private static Vm open(Path dir, VmRecord record) throws IOException {
    Map<String, VirtualDisk> disks = new LinkedHashMap<>();
    for (DiskSpec spec : record.disks()) {
      VirtualDisk disk = new VirtualDisk(spec.name(), spec.id(), dir.resolve(spec.name() + ".img"),
          spec.sizeBytes());
      disk.setOnline(record.power() == Power.RUNNING);
      disks.put(spec.name(), disk);
    }
    return new Vm(dir, record, disks);
  }

  public synchronized Vm create(String name, List<Long> diskSizes) throws IOException {
    Names.requireValid("VM", name);
    if (diskSizes == null || diskSizes.isEmpty()) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "a VM needs at least one disk");
    }
    List<DiskSpec> disks = new ArrayList<>();
    for (int i = 0; i < diskSizes.size(); i++) {
      long size = diskSizes.get(i);
      if (size <= 0 || size % 512 != 0) {
        throw new AgentException(ErrorCode.BAD_REQUEST,
            "disk size " + size + " must be a positive multiple of 512 bytes");
      }
      disks.add(new DiskSpec("disk" + i, size, UUID.randomUUID()));
    }
    return createWith(new VmRecord(name, Role.PRIMARY, Power.RUNNING, disks, null, null, site));
  }

  /** Creates the replica side of a VM; disks keep the source's identities so logs can be matched. */
  public synchronized Vm createReplica(String name, List<DiskSpec> disks, String sourceSite,
      String home) throws IOException {
    Names.requireValid("VM", name);
    Vm existing = vms.get(name);
    if (existing != null) {
      if (existing.record().role() == Role.REPLICA && existing.record().disks().equals(disks)) {
        return existing;
      }
      throw new AgentException(ErrorCode.VM_EXISTS, "site " + site + " already has a VM " + name
          + " that is not a replica of these disks");
    }
    disks.forEach(d -> Names.requireValid("disk", d.name()));
    VmRecord.ReplicaState state = new VmRecord.ReplicaState(sourceSite, false, 0, null,
        List.of());
    return createWith(new VmRecord(name, Role.REPLICA, Power.OFF, disks, null, state,
        home == null ? sourceSite : home));
  }

  private Vm createWith(VmRecord record) throws IOException {
    if (vms.containsKey(record.name())) {
      throw new AgentException(ErrorCode.VM_EXISTS, "VM " + record.name() + " already exists on "
          + site);
    }
    Path dir = vmsDir.resolve(record.name());
    Files.createDirectories(dir);
    for (DiskSpec spec : record.disks()) {
      try (RandomAccessFile f = new RandomAccessFile(dir.resolve(spec.name() + ".img").toFile(), "rw")) {
        f.setLength(spec.sizeBytes()); // sparse: unwritten ranges read as zeroes
      }
    }
    persist(dir, record);
    Vm vm = open(dir, record);
    vms.put(record.name(), vm);
    log.info("[{}] created {} VM {} with disks {}", site, record.role(), record.name(),
        record.disks().stream().map(d -> d.name() + "=" + d.sizeBytes()).toList());
    return vm;
  }

  /** The folder of VM {@code name}, whether or not it exists yet. */
  public Path vmDir(String name) {
    return vmsDir.resolve(Names.requireValid("VM", name));
  }

  /**
   * Makes the images already in {@link #vmDir} a VM with {@code record}: its trackers are
   * attached before the record is written (a crash after it finds logs, as for any protected VM)
   * and before the VM is listed, so no write through NBD goes untracked.
   */
  public synchronized Vm adopt(VmRecord record) throws IOException {
    if (vms.containsKey(record.name())) {
      throw new AgentException(ErrorCode.VM_EXISTS, "VM " + record.name() + " already exists on "
          + site);
    }
    Path dir = vmDir(record.name());
    for (DiskSpec spec : record.disks()) {
      Path image = dir.resolve(spec.name() + ".img");
      if (!Files.exists(image) || Files.size(image) != spec.sizeBytes()) {
        throw new IOException("cannot adopt VM " + record.name() + ": " + image + " is not a "
            + spec.sizeBytes() + "-byte image");
      }
    }
    Vm vm = open(dir, record);
    try {
      attachTrackers(vm);
      persist(dir, record);
    } catch (IOException | RuntimeException e) {
      for (VirtualDisk d : vm.disks()) { // closed, so that the commit can be tried again
        if (d.tracker() != null) {
          d.tracker().close();
        }
        d.close();
      }
      throw e;
    }
    vms.put(record.name(), vm);
    log.info("[{}] adopted {} VM {} with disks {}", site, record.role(), record.name(),
        record.disks().stream().map(d -> d.name() + "=" + d.sizeBytes()).toList());
    return vm;
  }

  public Optional<Vm> find(String name) {
    return Optional.ofNullable(vms.get(name));
  }

  public Vm get(String name) {
    Vm vm = vms.get(name);
    if (vm == null) {
      throw new AgentException(ErrorCode.VM_NOT_FOUND, "VM " + name + " not found on site " + site);
    }
    return vm;
  }

  /** The VM {@code name}, which must be a replica here (INVALID_STATE naming it if not). */
  public Vm getReplica(String name) {
    Vm vm = get(name);
    if (vm.record().role() != Role.REPLICA || vm.record().replica() == null) {
      throw new AgentException(ErrorCode.INVALID_STATE,
          "VM " + name + " on " + site + " is not a replica");
    }
    return vm;
  }

  public List<VmRecord> list() {
    return vms.values().stream().map(Vm::record)
        .sorted((a, b) -> a.name().compareTo(b.name())).toList();
  }

  public synchronized void delete(String name) throws IOException {
    Vm vm = get(name);
    if (vm.record().role() == Role.REPLICA) {
      replicaWatcher.beforeDelete(vm);
    }
    setPower(vm, Power.OFF);
    for (VirtualDisk d : vm.disks()) {
      if (d.tracker() != null) {
        d.tracker().close();
      }
      d.close();
    }
    vms.remove(name);
    try (Stream<Path> files = Files.walk(vm.dir())) {
      for (Path p : files.sorted((a, b) -> b.compareTo(a)).toList()) {
        Files.delete(p);
      }
    }
    log.info("[{}] deleted VM {}", site, name);
  }

  /**
   * Power on exports the disks; power off flushes, refuses new I/O and drops NBD clients. A VM
   * that failed over elsewhere is fenced: it does not power on here, or two copies would run.
   */
  public void setPower(Vm vm, Power power) throws IOException {
    synchronized (vm) {
      if (power == Power.RUNNING && vm.record().role() == Role.FAILED_OVER) {
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vm.name() + " failed over to"
            + " another site and is fenced on " + site + "; it runs here again only through"
            + " Reprotect and Failback");
      }
      for (VirtualDisk d : vm.disks()) {
        d.setOnline(power == Power.RUNNING);
      }
      if (power == Power.OFF) {
        disconnectClients.accept(vm.name());
      }
      update(vm, r -> r.withPower(power));
    }
    log.info("[{}] VM {} is now {}", site, vm.name(), power);
  }

  public void update(Vm vm, UnaryOperator<VmRecord> change) throws IOException {
    synchronized (vm) {
      VmRecord next = change.apply(vm.record());
      persist(vm.dir(), next);
      vm.setRecord(next);
    }
  }

  /** Attaches a change tracker to every disk of the VM, recovering logs left by a crash. */
  public void attachTrackers(Vm vm) throws IOException {
    for (VirtualDisk d : vm.disks()) {
      if (d.tracker() == null) {
        d.setTracker(ChangeTracker.open(vm.dir(), d.name(), d.id(), d.size(), 1));
      }
    }
    alignGenerations(vm);
  }

  /**
   * A swap seals every disk of a VM at one instant, so all disks share one active generation. A
   * crash after some disks were swapped and before the others leaves the laggards one generation
   * behind; finishing their swap now restores the invariant (the writes they logged came before
   * the interrupted swap, which is where their sealed generation ends).
   */
  private void alignGenerations(Vm vm) throws IOException {
    long target = vm.disks().stream().mapToLong(d -> d.tracker().activeGeneration()).max()
        .orElse(1);
    for (VirtualDisk d : vm.disks()) {
      while (d.tracker().activeGeneration() < target) {
        long sealed = d.withWritesHeld(() -> d.tracker().swap());
        log.warn("[{}] {}/{}: finished a swap interrupted by a crash (sealed generation {})",
            site, vm.name(), d.name(), sealed);
      }
    }
  }

  private static void persist(Path dir, VmRecord record) throws IOException {
    Path tmp = dir.resolve(RECORD_FILE + ".tmp");
    byte[] json = Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(record);
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      ch.write(java.nio.ByteBuffer.wrap(json));
      ch.force(true);
    }
    Files.move(tmp, dir.resolve(RECORD_FILE), StandardCopyOption.ATOMIC_MOVE,
        StandardCopyOption.REPLACE_EXISTING);
  }

  @Override
  public Optional<BlockDevice> openExport(String exportName) {
    int slash = exportName.indexOf('/');
    if (slash < 0) {
      return Optional.empty();
    }
    Vm vm = vms.get(exportName.substring(0, slash));
    if (vm == null || vm.record().power() != Power.RUNNING) {
      return Optional.empty();
    }
    return vm.exported(exportName.substring(slash + 1));
  }

  @Override
  public List<String> exportNames() {
    return vms.values().stream().filter(v -> v.record().power() == Power.RUNNING)
        .flatMap(v -> v.disks().stream().map(d -> v.name() + "/" + d.name())).sorted().toList();
  }

  @Override
  public void close() {
    for (Vm vm : vms.values()) {
      for (VirtualDisk d : vm.disks()) {
        try {
          d.flush();
          if (d.tracker() != null) {
            d.tracker().close();
          }
          d.close();
        } catch (IOException e) {
          throw new UncheckedIOException(e);
        }
      }
    }
  }
}
