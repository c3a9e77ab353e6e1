package io.siterecovery.activities;

/** Failure types that workflows branch on, beyond the agent's own error codes. */
public final class FailureTypes {
  public static final String INVALID_INPUT = "InvalidInput";
  public static final String UNKNOWN_POLICY = "UnknownPolicy";
  public static final String INVALID_POLICY = "InvalidPolicy";
  public static final String UNKNOWN_SITE = "UnknownSite";
  public static final String NOT_PROTECTED = "NotProtected";
  public static final String REPLICA_BEHIND = "ReplicaBehind";
  public static final String NOT_FAILED_OVER = "NotFailedOver";
  public static final String UNKNOWN_PLAN = "UnknownPlan";
  public static final String PLAN_FAILED = "PlanFailed";
  public static final String NOTHING_TO_FAIL_BACK = "NothingToFailBack";
  public static final String OLD_SOURCE_RUNNING = "OldSourceRunning";
  /** Another operation of the same VM (failover, Reprotect, Failback) runs. */
  public static final String VM_BUSY = "VmBusy";

  private FailureTypes() {}
}
