package io.siterecovery.activities;

import io.temporal.activity.ActivityInterface;

/** Replication policies live in the worker's configuration, so workflows ask for them. */
@ActivityInterface
public interface PolicyActivities {
  PolicySettings resolvePolicy(String name);
}
