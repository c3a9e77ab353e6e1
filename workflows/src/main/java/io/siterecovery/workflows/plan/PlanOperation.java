package io.siterecovery.workflows.plan;

/** What a RecoveryPlan run does to every VM of the plan, group after group. */
public enum PlanOperation {
  VALIDATE, TEST_FAILOVER, PLANNED_FAILOVER, UNPLANNED_FAILOVER, REPROTECT, FAILBACK
}
