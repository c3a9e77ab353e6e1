package io.siterecovery.agent.vm;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.disk.VirtualDisk;
import java.nio.file.Path;
import java.util.Collection;
import io.siterecovery.agent.nbd.BlockDevice;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.locks.ReentrantLock;

/** A VM loaded on this host: its record, its open disks, and a lock for replication steps. */
public final class Vm {
  private final Path dir;
  private final Map<String, VirtualDisk> disks;
  private final ReentrantLock operationLock = new ReentrantLock();
  private volatile VmRecord record;
  /** Devices exported instead of the disks themselves (a failed-over replica's overlays). */
  private volatile Map<String, ? extends BlockDevice> front;

  Vm(Path dir, VmRecord record, Map<String, VirtualDisk> disks) {
    this.dir = dir;
    this.record = record;
    this.disks = disks;
  }

  public String name() {
    return record.name();
  }

  public Path dir() {
    return dir;
  }

  public VmRecord record() {
    return record;
  }

  void setRecord(VmRecord record) {
    this.record = record;
  }

  public Collection<VirtualDisk> disks() {
    return disks.values();
  }

  public VirtualDisk disk(String name) {
    VirtualDisk d = disks.get(name);
    if (d == null) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "VM " + name() + " has no disk " + name);
    }
    return d;
  }

  /**
   * Exports {@code devices} (by disk name) in place of the disks, or the disks again when null:
   * a replica running after a failover runs on layers over its disks.
   */
  public void setFront(Map<String, ? extends BlockDevice> devices) {
    this.front = devices == null ? null : Map.copyOf(devices);
  }

  /** What NBD serves as disk {@code name}. */
  public Optional<BlockDevice> exported(String name) {
    Map<String, ? extends BlockDevice> f = front;
    if (f != null) {
      return Optional.ofNullable(f.get(name));
    }
    return Optional.ofNullable(disks.get(name));
  }

  /** Serialises replication operations (enable, copy bookkeeping, swap+ship, apply) per VM. */
  public ReentrantLock operationLock() {
    return operationLock;
  }
}
