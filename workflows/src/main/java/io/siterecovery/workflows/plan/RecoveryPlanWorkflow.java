package io.siterecovery.workflows.plan;

import io.siterecovery.workflows.common.MemberState;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.temporal.workflow.QueryMethod;
import io.temporal.workflow.SignalMethod;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/**
 * Runs one operation over every VM of a recovery plan, group after group, each VM's part as that
 * VM's own workflow. Id: {@code plan-<plan>}.
 */
@WorkflowInterface
public interface RecoveryPlanWorkflow {
  @WorkflowMethod(name = "RecoveryPlan")
  PlanStatus run(RecoveryPlanInput input);

  /** While AWAITING_COMMIT: commit every VM's failover. */
  @SignalMethod(name = "commit")
  void commit(OperatorRequest request);

  /** While AWAITING_COMMIT: cancel every VM's failover. */
  @SignalMethod(name = "cancel")
  void cancel(OperatorRequest request);

  /** While AWAITING_CLEANUP: clean every test VM up. */
  @SignalMethod(name = "cleanup")
  void cleanup(CleanupRequest request);

  /** While AWAITING_APPROVAL: the manual step named is done. */
  @SignalMethod(name = "approve")
  void approve(Approval approval);

  /** From the VMs' own workflows, as they reach the state the plan waits for. */
  @SignalMethod(name = "memberState")
  void memberState(MemberState state);

  @QueryMethod(name = "status")
  PlanStatus status();

  static String workflowId(String plan) {
    return "plan-" + plan;
  }
}
