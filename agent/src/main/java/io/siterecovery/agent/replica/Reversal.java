package io.siterecovery.agent.replica;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.DurableFiles;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages.ReverseResult;
import io.siterecovery.agent.api.AgentMessages.SalvageInfo;
import io.siterecovery.agent.api.AgentMessages.SalvagedRange;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.ChangeTracker;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.objectstore.ship.BucketShipper;
import io.siterecovery.agent.resync.ResyncLedger;
import io.siterecovery.agent.vm.Names;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.Power;
import io.siterecovery.agent.vm.VmRecord.ReplicaState;
import io.siterecovery.agent.vm.VmRecord.Role;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The old source's side of reverse replication: a VM that failed over to another site becomes
 * that site's replica, keeping its disks so that only what differs has to travel. Whatever it
 * had tracked and never shipped (the writes after its last replicated point, which the reverse
 * copy is about to overwrite) is first saved under {@code DATA/salvage/} with a report, and
 * deleted only when the operator says so.
 */
public final class Reversal {
  private static final Logger log = LoggerFactory.getLogger(Reversal.class);
  private static final String REPORT = "salvage.json";
  private static final String DONE = "reversal.json";
  private static final DateTimeFormatter STAMP =
      DateTimeFormatter.ofPattern("yyyyMMdd'T'HHmmss'Z'").withZone(ZoneOffset.UTC);

  private final VmHost host;
  private final Path salvageRoot;

  public Reversal(VmHost host) {
    this.host = host;
    this.salvageRoot = host.dataDir().resolve("salvage");
  }

  /**
   * Makes {@code vmName} a replica of {@code newSource}. Refused while the VM runs here: that
   * would be two live copies. Repeating it answers the same result.
   */
  public ReverseResult reverse(String vmName, String newSource) throws IOException {
    Names.requireValid("site", newSource);
    if (newSource.equals(host.site())) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "site " + host.site()
          + " cannot be the reverse source of its own VM");
    }
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      Path done = vm.dir().resolve(DONE);
      if (Files.exists(done)) {
        ReverseResult earlier = Json.MAPPER.readValue(done.toFile(), ReverseResult.class);
        if (earlier.newSource().equals(newSource)) {
          becomeReplica(vm, newSource); // a crash may have come between the two
          return earlier;
        }
      }
      VmRecord r = vm.record();
      if (r.role() == Role.REPLICA) {
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vmName + " on " + host.site()
            + " is a replica of " + (r.replica() == null ? "nothing" : r.replica().sourceSite())
            + ", not a VM that failed over to " + newSource);
      }
      if (r.power() == Power.RUNNING) {
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vmName + " is running on "
            + host.site() + "; shut it down before it becomes the replica of " + newSource
            + " (Reprotect with \"shutDownOldSource\":true does)");
      }
      String offline = ResyncLedger.load(vm).requiredReason();
      SalvageInfo salvage = salvage(vm);
      String resyncReason = offline != null ? offline : salvage != null
          ? "it held writes that never reached the replica (saved as " + salvage.id() + ")"
          : null;
      ReverseResult result = new ReverseResult(vmName, newSource, salvage, resyncReason);
      // The answer is kept before the VM changes, so that a repeated request gives it again.
      DurableFiles.writeJson(done, result);
      ResyncLedger.clear(vm.dir());
      deleteLogs(vm);
      becomeReplica(vm, newSource);
      log.info("[{}] VM {} is now the replica of {} (reverse replication); {}", host.site(),
          vmName, newSource, salvage == null ? "it held no unreplicated writes"
              : "its unreplicated writes were saved in " + salvage.path());
      return result;
    } finally {
      vm.operationLock().unlock();
    }
  }

  private void becomeReplica(Vm vm, String newSource) throws IOException {
    // A VM that shipped to a bucket (the object-store site that failed it over, say) is no
    // bucket source any more: its checkpoint and scratch must not meet a later protection.
    BucketShipper.forgetSource(vm);
    if (vm.record().role() != Role.REPLICA) {
      host.update(vm, rec -> new VmRecord(rec.name(), Role.REPLICA, Power.OFF, rec.disks(), null,
          new ReplicaState(newSource, false, 0, null, List.of()), rec.home()));
    }
  }

  /** Once the reverse replica is complete, a later reversal starts afresh. */
  static void forget(Vm vm) throws IOException {
    Files.deleteIfExists(vm.dir().resolve(DONE));
  }

  /**
   * Stops tracking and copies every log the VM's trackers held (sealed and not shipped, and the
   * active one) into a salvage folder with a report; null when they held no write. The caller
   * deletes the logs once it has kept its answer.
   */
  private SalvageInfo salvage(Vm vm) throws IOException {
    List<Path> logs = new ArrayList<>();
    for (VirtualDisk d : vm.disks()) {
      ChangeTracker t = d.tracker();
      d.setTracker(null);
      if (t != null) {
        t.close();
      }
    }
    try (Stream<Path> files = Files.list(vm.dir())) {
      for (Path f : files.sorted().toList()) {
        for (VirtualDisk d : vm.disks()) {
          if (HrlFormat.generationOf(d.name(), f.getFileName().toString()) >= 0) {
            logs.add(f);
          }
        }
      }
    }
    long records = 0;
    long bytes = 0;
    Instant first = null;
    Instant last = null;
    TreeMap<String, TreeMap<Long, Long>> ranges = new TreeMap<>();
    for (Path f : logs) {
      String disk = diskOf(vm, f);
      TreeMap<Long, Long> diskRanges = ranges.computeIfAbsent(disk, k -> new TreeMap<>());
      HrlReader.Scan scan = HrlReader.visitTolerant(f, rec -> merge(diskRanges, rec.offset(),
          rec.offset() + rec.length()));
      records += scan.records();
      bytes += scan.dataBytes();
      if (scan.records() > 0) {
        Instant modified = Files.getLastModifiedTime(f).toInstant();
        Instant created = Files.readAttributes(f, BasicFileAttributes.class).creationTime()
            .toInstant();
        first = first == null || created.isBefore(first) ? created : first;
        last = last == null || modified.isAfter(last) ? modified : last;
      }
    }
    if (records == 0) {
      return null;
    }
    Instant now = Instant.now();
    String id = vm.name() + "-" + STAMP.format(now);
    Path dir = Files.createDirectories(salvageRoot.resolve(id));
    for (Path f : logs) {
      // copied, not moved: until the reversal's answer is kept, a crash must find them again
      Files.copy(f, dir.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
    }
    List<SalvagedRange> listed = new ArrayList<>();
    long count = 0;
    for (var disk : ranges.entrySet()) {
      for (var range : disk.getValue().entrySet()) {
        if (listed.size() < SalvageInfo.MAX_LISTED) {
          listed.add(new SalvagedRange(disk.getKey(), range.getKey(),
              range.getValue() - range.getKey()));
        }
        count++;
      }
    }
    SalvageInfo info = new SalvageInfo(id, vm.name(), host.site(), now, first, last, logs.size(),
        records, bytes, count, listed, dir.toString());
    DurableFiles.writeJson(dir.resolve(REPORT), info);
    log.warn("[{}] {}: {} writes ({} bytes in {} ranges, {} .. {}) never reached the replica; "
        + "saved in {} before reverse replication overwrites them", host.site(), vm.name(),
        records, bytes, count, first, last, dir);
    return info;
  }

  private static void deleteLogs(Vm vm) throws IOException {
    try (Stream<Path> files = Files.list(vm.dir())) {
      for (Path f : files.toList()) {
        for (VirtualDisk d : vm.disks()) {
          if (HrlFormat.generationOf(d.name(), f.getFileName().toString()) >= 0) {
            Files.deleteIfExists(f);
          }
        }
      }
    }
  }

  private static String diskOf(Vm vm, Path log) {
    for (VirtualDisk d : vm.disks()) {
      if (HrlFormat.generationOf(d.name(), log.getFileName().toString()) >= 0) {
        return d.name();
      }
    }
    throw new IllegalStateException(log + " is no log of " + vm.name());
  }

  private static void merge(TreeMap<Long, Long> ranges, long start, long end) {
    var lower = ranges.floorEntry(start);
    if (lower != null && lower.getValue() >= start) {
      start = lower.getKey();
      end = Math.max(end, lower.getValue());
      ranges.remove(lower.getKey());
    }
    var inside = ranges.subMap(start, true, end, true);
    for (long e : inside.values()) {
      end = Math.max(end, e);
    }
    inside.clear();
    ranges.put(start, end);
  }

  /** Salvaged writes kept on this site, newest first. */
  public List<SalvageInfo> list() throws IOException {
    if (!Files.isDirectory(salvageRoot)) {
      return List.of();
    }
    List<SalvageInfo> all = new ArrayList<>();
    try (Stream<Path> dirs = Files.list(salvageRoot)) {
      for (Path d : dirs.toList()) {
        Path report = d.resolve(REPORT);
        if (Files.exists(report)) {
          all.add(Json.MAPPER.readValue(report.toFile(), SalvageInfo.class));
        }
      }
    }
    all.sort(Comparator.comparing(SalvageInfo::savedAt).reversed());
    return all;
  }

  /** Deletes salvaged writes: the operator's word that they are not needed. */
  public void delete(String id) throws IOException {
    Names.requireValid("salvage id", id);
    Path dir = salvageRoot.resolve(id);
    if (!Files.isDirectory(dir)) {
      throw new AgentException(ErrorCode.VM_NOT_FOUND, "no salvaged writes " + id + " on "
          + host.site());
    }
    DurableFiles.deleteTree(dir);
    log.info("[{}] salvaged writes {} deleted at the operator's request", host.site(), id);
  }
}
