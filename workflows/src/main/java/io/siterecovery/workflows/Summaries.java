package io.siterecovery.workflows;

import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.plan.PlanOperation;
import java.util.Locale;

/**
 * The static summary every workflow we start carries (WorkflowOptions and ChildWorkflowOptions
 * {@code setStaticSummary}): one line the Temporal Web UI shows on the workflow's page and in
 * its list, saying what the run is for. Made here so the CLI, the demo and parent workflows word
 * them alike. A site that is not known where the workflow is started is left out (the workflow's
 * current details name it once it has planned).
 */
public final class Summaries {
  private Summaries() {}

  public static String protect(String vm, String policy) {
    return "Protect " + vm + ", policy " + policyName(policy);
  }

  public static String protect(String vm, String policy, String sourceSite, String targetSite) {
    return "Protect " + vm + ": " + sourceSite + " → " + targetSite + ", policy "
        + policyName(policy);
  }

  public static String initialCopy(String vm, String sourceSite, String targetSite) {
    return "Initial copy of " + vm + ": " + sourceSite + " → " + targetSite;
  }

  /** "Planned failover of web01", "Test failover of web01 at rp-7", "... to secondary". */
  public static String failover(FailoverType type, String vm, String recoveryPoint,
      String targetSite) {
    String kind = type == null ? "Planned" : capitalized(type.name());
    return kind + " failover of " + vm + (targetSite == null ? "" : " to " + targetSite)
        + (recoveryPoint == null || recoveryPoint.equals("LATEST") ? "" : " at " + recoveryPoint);
  }

  public static String reprotect(String vm, String policy) {
    return "Reprotect " + vm + ": reverse replication, policy " + policyName(policy);
  }

  public static String failback(String vm, boolean reprotect) {
    return "Failback of " + vm + " to its home site" + (reprotect ? ", then reprotect" : "");
  }

  public static String plan(String plan, PlanOperation operation) {
    return "Recovery plan " + plan + (operation == null ? ""
        : ": " + operation.name().toLowerCase(Locale.ROOT).replace('_', ' '));
  }

  private static String policyName(String policy) {
    return policy == null ? "default" : policy;
  }

  private static String capitalized(String name) {
    return name.charAt(0) + name.substring(1).toLowerCase(Locale.ROOT);
  }
}
