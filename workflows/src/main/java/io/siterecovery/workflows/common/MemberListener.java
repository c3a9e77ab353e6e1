package io.siterecovery.workflows.common;

import io.temporal.workflow.SignalMethod;
import io.temporal.workflow.Workflow;
import io.temporal.workflow.WorkflowInterface;

/** A workflow that starts VMs' workflows and hears from them (RecoveryPlan, Failback). */
@WorkflowInterface
public interface MemberListener {
  @SignalMethod(name = "memberState")
  void memberState(MemberState state);

  /**
   * Tells the parent of the calling workflow, if it has one, that it reached {@code state}. Runs
   * started before parents listened keep replaying without the signal.
   */
  static void tellParent(MemberState state) {
    Workflow.getInfo().getParentWorkflowId().ifPresent(parent -> {
      if (Workflow.getVersion("tellParent", Workflow.DEFAULT_VERSION, 1) == 1) {
        Workflow.newExternalWorkflowStub(MemberListener.class, parent).memberState(state);
      }
    });
  }
}
