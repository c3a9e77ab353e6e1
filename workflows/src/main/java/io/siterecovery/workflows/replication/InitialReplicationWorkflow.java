package io.siterecovery.workflows.replication;

import io.temporal.workflow.WorkflowInterface;
import io.temporal.workflow.WorkflowMethod;

/** Copies a VM's disks to the replica one at a time. Id: {@code protect-<vm>-initial}. */
@WorkflowInterface
public interface InitialReplicationWorkflow {
  @WorkflowMethod(name = "InitialReplication")
  InitialReplicationResult replicate(InitialReplicationInput input);

  static String workflowId(String vm) {
    return "protect-" + vm + "-initial";
  }
}
