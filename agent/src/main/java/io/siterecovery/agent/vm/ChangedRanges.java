package io.siterecovery.agent.vm;

import io.siterecovery.agent.DurableFiles;
import io.siterecovery.agent.disk.Overlay;
import io.siterecovery.agent.disk.VirtualDisk;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Which ranges of a VM's disks changed between a failover point and the commit
 * ({@code vms/<vm>/changed-since-failover/<disk>.ranges}): what reverse replication sends first,
 * before the logs tracked since the commit.
 */
public final class ChangedRanges {
  private static final String DIR = "changed-since-failover";

  private ChangedRanges() {}

  private static Path file(Vm vm, String disk) {
    return vm.dir().resolve(DIR).resolve(disk + ".ranges");
  }

  public static boolean recorded(Vm vm) {
    return Files.isDirectory(vm.dir().resolve(DIR));
  }

  /** Keeps {@code ranges} ({start, end} pairs) of disk {@code d}, durably. */
  public static void record(Vm vm, VirtualDisk d, List<long[]> ranges) throws IOException {
    record(vm.dir(), d.name(), ranges);
  }

  /** The same for a VM not loaded yet, in folder {@code vmDir} (a recovery being adopted). */
  public static void record(Path vmDir, String disk, List<long[]> ranges) throws IOException {
    Path file = vmDir.resolve(DIR).resolve(disk + ".ranges");
    Files.createDirectories(file.getParent());
    Overlay.writeRanges(file, ranges);
  }

  /** The ranges ({offset, length}) kept for disk {@code d}; empty when none were kept. */
  public static List<long[]> of(Vm vm, VirtualDisk d) throws IOException {
    Path file = file(vm, d.name());
    return Files.exists(file) ? Overlay.readRanges(file, d.size()) : List.of();
  }

  public static long bytes(Vm vm) throws IOException {
    long total = 0;
    for (VirtualDisk d : vm.disks()) {
      total += of(vm, d).stream().mapToLong(r -> r[1]).sum();
    }
    return total;
  }

  /** Forgets them once reverse replication has made the old site equal. */
  public static void forget(Vm vm) throws IOException {
    DurableFiles.deleteTree(vm.dir().resolve(DIR));
  }

}
