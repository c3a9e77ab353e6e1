package io.siterecovery.workflows.reprotect;

import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.temporal.workflow.QueryMethod;
import io.temporal.workflow.SignalMethod;
import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/**
 * Reverse replication after a committed failover: the VM becomes protected from the site it runs
 * on to the one it came from, reusing the old site's disks. Id: {@code reprotect-<vm>}.
 */
@WorkflowInterface
public interface ReprotectWorkflow {
  @WorkflowMethod(name = "Reprotect")
  ReprotectStatus reprotect(ReprotectInput input);

  /** Progress of a resync, from the activity that runs it. */
  @SignalMethod(name = "copyProgress")
  void copyProgress(CopyProgress progress);

  @QueryMethod(name = "status")
  ReprotectStatus status();

  static String workflowId(String vm) {
    return "reprotect-" + vm;
  }
}
