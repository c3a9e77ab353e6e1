package io.siterecovery.activities;

import io.siterecovery.activities.AgentActivityRecords.PolicySettings;
import io.temporal.failure.ApplicationFailure;
import java.util.Map;

public class PolicyActivitiesImpl implements PolicyActivities {
  private final Map<String, PolicySettings> policies;

  public PolicyActivitiesImpl(Map<String, PolicySettings> policies) {
    this.policies = Map.copyOf(policies);
  }

  @Override
  public PolicySettings resolvePolicy(String name) {
    PolicySettings p = policies.get(name);
    if (p == null) {
      throw ApplicationFailure.newNonRetryableFailure("unknown policy '" + name + "'; configured: "
          + policies.keySet().stream().sorted().toList(), FailureTypes.UNKNOWN_POLICY);
    }
    return p;
  }
}
