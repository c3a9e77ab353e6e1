package io.siterecovery.agent.vm;

import com.fasterxml.jackson.annotation.JsonIgnoreProperties;
import java.time.Instant;
import java.util.List;
import java.util.UUID;

/**
 * A VM as persisted in {@code vms/<name>/vm.json}. {@code home} is the site where the VM was
 * created, which a failback returns it to (null in records written before it was kept: the
 * callers fall back to the replica's source). A {@code quiesce} command that an earlier
 * version kept here (set over the API) is ignored: hooks are local configuration now
 * ({@link QuiesceHooks}).
 */
@JsonIgnoreProperties({"quiesce"})
public record VmRecord(String name, Role role, Power power, List<DiskSpec> disks,
    SourceProtection protection, ReplicaState replica, String home) {

  public enum Role { PRIMARY, REPLICA, FAILED_OVER }

  public enum Power { RUNNING, OFF }

  public record DiskSpec(String name, long sizeBytes, UUID id) {}

  /**
   * Present on the source while the VM is replicated. The target's address is not kept: it comes
   * from the agent's own peer configuration each time ({@code targetUrl} of older records is
   * ignored).
   */
  @JsonIgnoreProperties({"targetUrl"})
  public record SourceProtection(String targetSite, boolean initialComplete) {}

  /**
   * Present on a replica: how far it has applied the source's logs, and the recovery points it can
   * still return to. {@code points} lists the retained points oldest first; the last one is the
   * applied generation. A {@code vm.json} written before points existed reads as an empty list.
   */
  public record ReplicaState(String sourceSite, boolean initialComplete, long appliedGeneration,
      Instant pointTime, List<RecoveryPointInfo> points) {
    public ReplicaState {
      points = points == null ? List.of() : List.copyOf(points);
    }
  }

  /**
   * One recovery point of a replica: the state after applying {@code generation}, sealed on the
   * source at {@code pointTime}. {@code undoBytes} is the size of the undo data kept to go from
   * this point back to the one before it (0 for the oldest retained point).
   */
  public record RecoveryPointInfo(long generation, Instant pointTime, boolean appConsistent,
      long undoBytes) {}

  public VmRecord withRole(Role r) {
    return new VmRecord(name, r, power, disks, protection, replica, home);
  }

  public VmRecord withPower(Power p) {
    return new VmRecord(name, role, p, disks, protection, replica, home);
  }

  public VmRecord withProtection(SourceProtection p) {
    return new VmRecord(name, role, power, disks, p, replica, home);
  }

  public VmRecord withReplica(ReplicaState r) {
    return new VmRecord(name, role, power, disks, protection, r, home);
  }
}
