package io.siterecovery.workflows.protection;

import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.replication.CopyRetrying;
import io.temporal.workflow.QueryMethod;
import io.temporal.workflow.SignalMethod;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/** Enables protection of one VM and keeps it replicated. Id: {@code protect-<vm>}. */
@WorkflowInterface
public interface ProtectVmWorkflow {
  @WorkflowMethod(name = "ProtectVm")
  ProtectionStatus protect(ProtectVmInput input);

  /** Stops delta cycles; changes keep being tracked. */
  @SignalMethod(name = "pause")
  void pause(OperatorRequest request);

  /** Resumes after pause, or retries now after a non-recoverable (CRITICAL) error. */
  @SignalMethod(name = "resume")
  void resume(OperatorRequest request);

  /** Ends protection: tracking stops and the replica is removed. */
  @SignalMethod(name = "disable")
  void disable(OperatorRequest request);

  /** Resynchronise now, whatever the policy's window says. */
  @SignalMethod(name = "resync")
  void resync(OperatorRequest request);

  /** Switch to another named policy; it takes effect at the next cycle. */
  @SignalMethod(name = "setPolicy")
  void setPolicy(PolicyChange change);

  @SignalMethod(name = "copyProgress")
  void copyProgress(CopyProgress progress);

  /** From the initial copy: a disk still fails after its retries (health WARNING meanwhile). */
  @SignalMethod(name = CopyRetrying.SIGNAL)
  void copyRetrying(CopyRetrying notice);

  @SignalMethod(name = "failover")
  void failover(FailoverNotice notice);

  @QueryMethod(name = "status")
  ProtectionStatus status();

  static String workflowId(String vm) {
    return "protect-" + vm;
  }
}
