package io.siterecovery.activities;

import io.temporal.failure.ApplicationFailure;
import java.util.Map;
import java.util.function.Supplier;

public class PolicyActivitiesImpl implements PolicyActivities {
  /** Read at every call, so an edited configuration applies at the next replication cycle. */
  private final Supplier<Map<String, PolicySettings>> policies;
  private final Supplier<Map<String, PlanDefinition>> plans;

  public PolicyActivitiesImpl(Supplier<Map<String, PolicySettings>> policies,
      Supplier<Map<String, PlanDefinition>> plans) {
    this.policies = policies;
    this.plans = plans;
  }

  @Override
  public PlanDefinition resolvePlan(String name) {
    Map<String, PlanDefinition> current = plans.get();
    PlanDefinition p = current.get(name);
    if (p == null) {
      throw ApplicationFailure.newNonRetryableFailure("unknown recovery plan '" + name
          + "'; configured: " + current.keySet().stream().sorted().toList(),
          FailureTypes.UNKNOWN_PLAN);
    }
    return p;
  }

  @Override
  public PolicySettings resolvePolicy(String name) {
    Map<String, PolicySettings> current = policies.get();
    PolicySettings p = current.get(name);
    if (p == null) {
      throw ApplicationFailure.newNonRetryableFailure("unknown policy '" + name + "'; configured: "
          + current.keySet().stream().sorted().toList(), FailureTypes.UNKNOWN_POLICY);
    }
    try {
      return p.validated();
    } catch (IllegalArgumentException e) {
      throw ApplicationFailure.newNonRetryableFailure(e.getMessage(), FailureTypes.INVALID_POLICY);
    }
  }
}
