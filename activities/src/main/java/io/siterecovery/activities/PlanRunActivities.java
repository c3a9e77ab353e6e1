package io.siterecovery.activities;

import io.temporal.activity.ActivityInterface;
import java.util.List;

/**
 * What a recovery plan asks of Temporal itself, through the worker's client: its own earlier
 * runs (for an ETA), which VMs are busy in another operation, and the end of VM workflows it
 * started in an earlier run of a continued-as-new chain (no longer its children).
 */
@ActivityInterface
public interface PlanRunActivities {
  /**
   * The timings of the latest completed run of workflow {@code plan-<plan>} that ran
   * {@code operation} and recorded them, or null when there is none within the namespace's
   * retention.
   */
  PlanTimings previousTimings(String plan, String operation);

  /** Those of {@code workflowIds} that have an open execution now. */
  List<String> openWorkflows(List<String> workflowIds);

  /** Waits, heartbeating, until every one of {@code workflowIds} has closed; how each ended. */
  List<ClosedRun> awaitClosed(List<String> workflowIds);

  /**
   * How a workflow ended: {@code state} is its result's {@code state} field when it completed,
   * null otherwise, with {@code error} saying why (failed, terminated, timed out).
   */
  record ClosedRun(String workflowId, String state, String error) {}
}
