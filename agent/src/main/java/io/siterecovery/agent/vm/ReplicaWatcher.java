package io.siterecovery.agent.vm;

import io.siterecovery.agent.disk.VirtualDisk;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;

/**
 * Told before a replica's images change, so that whatever still reads the replica's earlier
 * contents (a test VM at a recovery point) can keep them. Callers hold the VM's operation lock.
 */
public interface ReplicaWatcher {
  ReplicaWatcher NONE = new ReplicaWatcher() {
    @Override
    public void beforeApply(Vm replica, Map<VirtualDisk, Path> logs) {}

    @Override
    public void beforeRewrite(Vm replica, String what) {}

    @Override
    public void beforeDelete(Vm replica) {}
  };

  /** Before an apply writes these verified logs' records to the replica's disks. */
  void beforeApply(Vm replica, Map<VirtualDisk, Path> logs) throws IOException;

  /**
   * Before the replica is rewritten outside log apply ({@code what}: a copy, a resync, a
   * roll-back); throws to refuse.
   */
  void beforeRewrite(Vm replica, String what);

  /** Before the replica and its images are deleted. */
  void beforeDelete(Vm replica) throws IOException;
}
