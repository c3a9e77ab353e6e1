package io.siterecovery.agent.vm;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.disk.VirtualDisk;
import java.nio.file.Path;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.locks.ReentrantLock;

/** A VM loaded on this host: its record, its open disks, and a lock for replication steps. */
public final class Vm {
  private final Path dir;
  private final Map<String, VirtualDisk> disks;
  private final ReentrantLock operationLock = new ReentrantLock();
  private volatile VmRecord record;

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

  /** Serialises replication operations (enable, copy bookkeeping, swap+ship, apply) per VM. */
  public ReentrantLock operationLock() {
    return operationLock;
  }
}
