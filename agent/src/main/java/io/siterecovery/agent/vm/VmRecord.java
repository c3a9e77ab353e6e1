package io.siterecovery.agent.vm;

import java.time.Instant;
import java.util.List;
import java.util.UUID;

/** A VM as persisted in {@code vms/<name>/vm.json}. */
public record VmRecord(String name, Role role, Power power, List<DiskSpec> disks,
    SourceProtection protection, ReplicaState replica) {

  public enum Role { PRIMARY, REPLICA, FAILED_OVER }

  public enum Power { RUNNING, OFF }

  public record DiskSpec(String name, long sizeBytes, UUID id) {}

  /** Present on the source while the VM is replicated. */
  public record SourceProtection(String targetSite, String targetUrl, boolean initialComplete) {}

  /** Present on a replica: how far it has applied the source's logs. */
  public record ReplicaState(String sourceSite, boolean initialComplete, long appliedGeneration,
      Instant pointTime) {}

  public VmRecord withRole(Role r) {
    return new VmRecord(name, r, power, disks, protection, replica);
  }

  public VmRecord withPower(Power p) {
    return new VmRecord(name, role, p, disks, protection, replica);
  }

  public VmRecord withProtection(SourceProtection p) {
    return new VmRecord(name, role, power, disks, p, replica);
  }

  public VmRecord withReplica(ReplicaState r) {
    return new VmRecord(name, role, power, disks, protection, r);
  }
}
