package io.siterecovery.workflows.failover;

import io.siterecovery.workflows.common.OperatorRequest;
import io.temporal.workflow.QueryMethod;
import io.temporal.workflow.SignalMethod;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/**
 * Fails one VM over to its replica site. Id: {@code failover-<vm>} for PLANNED and UNPLANNED,
 * {@code test-failover-<vm>} for TEST, so that a test and a real failover can run side by side.
 */
@WorkflowInterface
public interface FailoverWorkflow {
  @WorkflowMethod(name = "Failover")
  FailoverStatus failover(FailoverInput input);

  /** Make the replica the active VM. PLANNED and UNPLANNED only. */
  @SignalMethod(name = "commit")
  void commit(OperatorRequest request);

  /** Stop the replica, start the source again and resume protection. PLANNED and UNPLANNED only. */
  @SignalMethod(name = "cancel")
  void cancel(OperatorRequest request);

  /**
   * While AWAITING_COMMIT: stop the replica VM, start it again at another retained point (older
   * or newer), and wait for the decision again. PLANNED and UNPLANNED only.
   */
  @SignalMethod(name = "changeRecoveryPoint")
  void changeRecoveryPoint(ChangeRecoveryPoint request);

  /** End a TEST failover: delete the test VM and its scratch data. */
  /**
   * Progress of a long step (a commit waiting for a replica's disks to be local), sent by the
   * activity that runs it; not an operator's signal.
   */
  @SignalMethod(name = "copyProgress")
  void copyProgress(io.siterecovery.activities.AgentActivityRecords.CopyProgress progress);

  @SignalMethod(name = "cleanup")
  void cleanup(CleanupRequest request);

  @QueryMethod(name = "status")
  FailoverStatus status();

  static String workflowId(String vm) {
    return "failover-" + vm;
  }

  static String testWorkflowId(String vm) {
    return "test-failover-" + vm;
  }
}
