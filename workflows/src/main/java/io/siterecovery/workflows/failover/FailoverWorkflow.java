package io.siterecovery.workflows.failover;

import io.siterecovery.workflows.common.OperatorRequest;
import io.temporal.workflow.QueryMethod;
import io.temporal.workflow.SignalMethod;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/** Fails one VM over to its replica site. Id: {@code failover-<vm>}. */
@WorkflowInterface
public interface FailoverWorkflow {
  @WorkflowMethod(name = "Failover")
  FailoverStatus failover(FailoverInput input);

  /** Make the replica the active VM. */
  @SignalMethod(name = "commit")
  void commit(OperatorRequest request);

  /** Stop the replica, start the source again and resume protection. */
  @SignalMethod(name = "cancel")
  void cancel(OperatorRequest request);

  @QueryMethod(name = "status")
  FailoverStatus status();

  static String workflowId(String vm) {
    return "failover-" + vm;
  }
}
