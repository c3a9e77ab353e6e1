package io.siterecovery.activities;

import io.siterecovery.activities.AgentActivityRecords.CopyDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.DeltaRequest;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.activities.AgentActivityRecords.DiskResyncResult;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.ResyncDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.PromoteOutcome;
import io.siterecovery.activities.AgentActivityRecords.ReprotectPlan;
import io.siterecovery.activities.AgentActivityRecords.ReverseOutcome;
import io.siterecovery.activities.AgentActivityRecords.SeedResult;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.AgentActivityRecords.TestCleanup;
import io.siterecovery.activities.AgentActivityRecords.TestVm;
import io.temporal.activity.ActivityInterface;

/**
 * One step on one agent each. Failures carry the agent's error code as the failure type;
 * non-recoverable codes (see {@link FailureTypes}) are non-retryable.
 */
@ActivityInterface
public interface AgentActivities {
  /** Finds the VM's primary site and its partner; fails for an unknown VM or site. */
  ProtectionPlan planProtection(String vm);

  /**
   * As {@link #planProtection}, towards {@code targetSite} rather than the partner of the VM's
   * site; fails if the VM replicates elsewhere already.
   */
  ProtectionPlan planProtectionTo(String vm, String targetSite);

  /** Plan of a VM that is already replicated; fails if it is not. */
  ProtectionPlan describeProtection(String vm);

  /** Creates the relationship and starts change tracking; returns whether the replica is seeded. */
  boolean enableReplication(ProtectionPlan plan);

  /** Copies one disk to the replica, heartbeating its offset; resumes from the last heartbeat. */
  DiskCopyResult copyDisk(CopyDiskRequest request);

  /** Swap, ship and apply: one delta cycle. */
  ReplicationCycle replicateDelta(DeltaRequest request);

  SourceHealth sourceHealth(ProtectionPlan plan);

  void completeInitialReplication(ProtectionPlan plan);

  /** Starts a resync: seals the logs at one generation and returns it. Idempotent. */
  long beginResync(ProtectionPlan plan);

  /** Compares one disk block by block and sends differing blocks; resumes by block cursor. */
  DiskResyncResult resyncDisk(ResyncDiskRequest request);

  /** Ends a resync: the replica is consistent at the resync's generation. */
  ReplicaPoint completeResync(ProtectionPlan plan);

  void disableReplication(ProtectionPlan plan);

  ReplicaPoint replicaPoint(String site, String vm);

  /** Rolls the (powered-off) replica back to a retained point. */
  ReplicaPoint rollbackReplica(String site, String vm, long generation);

  void powerOn(String site, String vm);

  void powerOff(String site, String vm);

  /** The replica becomes the active VM; the old primary is marked failed over if reachable. */
  void commitFailover(ProtectionPlan plan);

  /**
   * Creates the test VM {@code <vm>-test} on {@code site} from the replica's retained point
   * {@code generation}, without copying the disks. Idempotent under {@code key}; fails
   * (non-retryable) while another test of the VM lives.
   */
  TestVm createTestVm(String site, String vm, long generation, String key);

  /** The VM's live test VM on {@code site}, or null when there is none. */
  TestVm findTestVm(String site, String vm);

  /** Deletes the VM's test VM and its scratch data and checks that nothing remains. Idempotent. */
  TestCleanup deleteTestVm(String site, String vm);

  /**
   * Starts the replica as the VM at retained point {@code generation}, on layers that leave the
   * replica's disks as they are until a commit. Idempotent under {@code key}.
   */
  void startReplica(String site, String vm, long generation, String key);

  /** Stops a started replica and drops what it wrote: the replica is as before. Idempotent. */
  void stopReplica(String site, String vm);

  /** Commits: the started replica becomes the primary, its changes kept for reverse replication. */
  PromoteOutcome promoteReplica(ProtectionPlan plan);

  /**
   * Fences the VM on {@code site}: powered off and refusing to power on until reprotected, so
   * that two copies never run. Idempotent; fails (retryable) when the site does not answer.
   */
  void fenceVm(String site, String vm);

  /** Lifts a fence when a failover is cancelled. Idempotent. */
  void unfenceVm(String site, String vm);

  /** Finds where a failed-over VM runs and what is left of it where it came from. */
  ReprotectPlan planReprotect(String vm);

  /** Turns the old source into the replica of {@code newSource}, salvaging unreplicated writes. */
  ReverseOutcome reverseOldSource(String oldSite, String vm, String newSource);

  /** Sends one disk's ranges changed since the failover to the reverse replica. */
  SeedResult sendChangedRanges(ProtectionPlan plan, String disk, AgentActivityRecords.TransferSettings transfer);

  /** The site a VM was created on, as its active copy records it. */
  String homeOf(ProtectionPlan plan);

  /**
   * Runs the plan script {@code script} from {@code site}'s own script directory with the step's
   * context, for at most {@code timeout}. Not retried: a script may not be safe to run twice.
   */
  AgentActivityRecords.ScriptOutcome runPlanScript(String site, String script,
      AgentActivityRecords.ScriptContext context, java.time.Duration timeout);

  /** The plan scripts {@code site}'s agent has. */
  java.util.List<String> planScripts(String site);

  /** Free space on {@code site}'s agent, where test clones and change logs would grow. */
  AgentActivityRecords.SiteStorage siteStorage(String site);
}
