package io.siterecovery.activities;

import io.siterecovery.activities.AgentActivityRecords.CopyDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.temporal.activity.ActivityInterface;

/**
 * One step on one agent each. Failures carry the agent's error code as the failure type;
 * non-recoverable codes (see {@link FailureTypes}) are non-retryable.
 */
@ActivityInterface
public interface AgentActivities {
  /** Finds the VM's primary site and its partner; fails for an unknown VM or site. */
  ProtectionPlan planProtection(String vm);

  /** Plan of a VM that is already replicated; fails if it is not. */
  ProtectionPlan describeProtection(String vm);

  /** Creates the relationship and starts change tracking; returns whether the replica is seeded. */
  boolean enableReplication(ProtectionPlan plan);

  /** Copies one disk to the replica, heartbeating its offset; resumes from the last heartbeat. */
  DiskCopyResult copyDisk(CopyDiskRequest request);

  /** Swap, ship and apply: one delta cycle. */
  ReplicationCycle replicateDelta(ProtectionPlan plan);

  void completeInitialReplication(ProtectionPlan plan);

  void disableReplication(ProtectionPlan plan);

  ReplicaPoint replicaPoint(String site, String vm);

  void powerOn(String site, String vm);

  void powerOff(String site, String vm);

  /** The replica becomes the active VM; the old primary is marked failed over. */
  void commitFailover(ProtectionPlan plan);
}
