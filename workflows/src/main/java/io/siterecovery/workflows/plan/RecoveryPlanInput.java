package io.siterecovery.workflows.plan;

import io.siterecovery.workflows.failover.CommitPolicy;

/**
 * {@code {"plan":"erp","operation":"PLANNED_FAILOVER","recoveryPoint":"LATEST_COMMON",
 * "commitPolicy":{"action":"COMMIT","after":"PT1H"}}}. {@code recoveryPoint} (failovers only):
 * LATEST (default), LATEST_APP_CONSISTENT, or LATEST_COMMON, the latest instant every VM of the
 * plan has a point at or before. {@code commitPolicy}: as for Failover, for the whole plan; for
 * VALIDATE, the one a failover would run with, so that the dry run can check the plan's manual
 * steps against it. {@code carried}: set only by the run itself when it continues as new.
 */
public record RecoveryPlanInput(String plan, PlanOperation operation, String recoveryPoint,
    CommitPolicy commitPolicy, PlanCarry carried) {

  public RecoveryPlanInput(String plan, PlanOperation operation, String recoveryPoint,
      CommitPolicy commitPolicy) {
    this(plan, operation, recoveryPoint, commitPolicy, null);
  }
}
