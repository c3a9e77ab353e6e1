package io.siterecovery.workflows.common;

import io.siterecovery.activities.FailureTypes;
import io.siterecovery.activities.PlanRunActivities;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.temporal.failure.ApplicationFailure;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A VM's own operations run under fixed ids, one of each at a time. Which of them run now is
 * asked of Temporal (not of the agents, which cannot tell a failover that has not yet started
 * the replica from no failover at all): a recovery plan's dry run and each operation's own
 * validation ask it the same way, so the refusals agree.
 */
public final class VmOperations {
  private VmOperations() {}

  /** The ids of a VM's failover, test failover, Reprotect and Failback. */
  public static List<String> workflowIds(String vm) {
    return List.of(FailoverWorkflow.workflowId(vm), FailoverWorkflow.testWorkflowId(vm),
        ReprotectWorkflow.workflowId(vm), FailbackWorkflow.workflowId(vm));
  }

  /**
   * Of the VMs' operations, those that run now, each as workflow id to its VM; {@code ignored}
   * ids (the caller's own, its parent's) are not asked about.
   */
  public static Map<String, String> running(PlanRunActivities runs, Collection<String> vms,
      Collection<String> ignored) {
    Map<String, String> vmOf = new LinkedHashMap<>();
    for (String vm : vms) {
      for (String id : workflowIds(vm)) {
        if (!ignored.contains(id)) {
          vmOf.put(id, vm);
        }
      }
    }
    Map<String, String> running = new LinkedHashMap<>();
    for (String id : runs.openWorkflows(List.copyOf(vmOf.keySet()))) {
      running.put(id, vmOf.get(id));
    }
    return running;
  }

  /**
   * Refuses {@code operation} of {@code vm} while one of {@code conflicting} (of its operation
   * ids) runs, naming it and saying what ends it.
   */
  public static void refuseWhileRunning(PlanRunActivities runs, String vm, String operation,
      Map<String, String> conflicting) {
    List<String> ignored = workflowIds(vm).stream().filter(id -> !conflicting.containsKey(id))
        .toList();
    String busy = running(runs, List.of(vm), ignored).keySet().stream().findFirst().orElse(null);
    if (busy != null) {
      throw ApplicationFailure.newNonRetryableFailure(operation + " of " + vm + " refused: "
          + busy + " is running; " + conflicting.get(busy), FailureTypes.VM_BUSY);
    }
  }
}
