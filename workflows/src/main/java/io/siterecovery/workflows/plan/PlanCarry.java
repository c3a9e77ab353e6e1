package io.siterecovery.workflows.plan;

import io.siterecovery.activities.PlanDefinition;
import io.siterecovery.activities.PlanTimings;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.plan.PlanStatus.ActionStatus;
import io.siterecovery.workflows.plan.PlanStatus.VmStatus;
import java.time.Instant;
import java.util.List;
import java.util.Map;

/**
 * A run's state handed to its continuation when a large plan continues as new between groups
 * (so that no history nears Temporal's limits): the plan as it was read at the start, where the
 * run is, and everything its status and report show. Set by the workflow itself; an operator
 * never sends it.
 */
public record PlanCarry(PlanDefinition plan, Instant startedAt, int nextGroup,
    List<CarriedMember> members, Map<String, String> groupStates,
    Map<String, List<ActionStatus>> actions, Map<String, Instant> groupStartedAt,
    Map<String, Instant> groupEndedAt, List<String> steps, List<String> failures,
    Instant commonInstant, PlanTimings previous, String etaFrom, int continuations) {

  /** One VM's part: its status, where it replicates and the point asked of it. */
  public record CarriedMember(VmStatus status, ProtectionPlan protection,
      String requestedPoint) {}
}
