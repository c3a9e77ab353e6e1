package io.siterecovery.activities;

import io.temporal.activity.ActivityInterface;

/** Replication policies and recovery plans live in the worker's configuration: workflows ask. */
@ActivityInterface
public interface PolicyActivities {
  PolicySettings resolvePolicy(String name);

  /** The plan as configured now; an unknown plan fails, non-retryable, naming the known ones. */
  PlanDefinition resolvePlan(String name);
}
