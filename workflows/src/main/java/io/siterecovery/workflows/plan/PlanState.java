package io.siterecovery.workflows.plan;

/** Where a RecoveryPlan run is. */
public enum PlanState {
  VALIDATING, RUNNING, AWAITING_APPROVAL, AWAITING_COMMIT, AWAITING_CLEANUP, FINISHING,
  COMPLETED, FAILED
}
