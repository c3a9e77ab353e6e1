package io.siterecovery.workflows.failback;

import io.siterecovery.workflows.common.MemberState;
import io.siterecovery.workflows.common.OperatorRequest;
import io.temporal.workflow.QueryMethod;
import io.temporal.workflow.SignalMethod;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/**
 * Brings a failed-over VM home: a planned failover from the active site back to its home site,
 * then reverse replication again. Id: {@code failback-<vm>}.
 */
@WorkflowInterface
public interface FailbackWorkflow {
  @WorkflowMethod(name = "Failback")
  FailbackStatus failback(FailbackInput input);

  /** Commit the failover home (passed on to {@code failover-<vm>}). */
  @SignalMethod(name = "commit")
  void commit(OperatorRequest request);

  /** Cancel the failover home: the VM stays on the active site, still protected. */
  @SignalMethod(name = "cancel")
  void cancel(OperatorRequest request);

  /** From {@code failover-<vm>}: passed on to the recovery plan that started this failback. */
  @SignalMethod(name = "memberState")
  void memberState(MemberState state);

  @QueryMethod(name = "status")
  FailbackStatus status();

  static String workflowId(String vm) {
    return "failback-" + vm;
  }
}
