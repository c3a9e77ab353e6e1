package io.siterecovery.workflows.plan;

import io.siterecovery.activities.PlanTimings;
import java.time.Instant;
import java.util.List;

/**
 * The {@code status} query and the result of a RecoveryPlan run: the drill report. Per group and
 * per VM the state, its workflow, the point it runs at and its data-loss window (how old that
 * point was when the run started), the actions with their outcome and who approved what, every
 * step with its time, and the achieved RTO: from the start of the run until the last VM ran.
 * {@code commonInstant}: the instant LATEST_COMMON chose (null otherwise).
 *
 * <p>Elapsed times and ETAs are as of {@code asOf}, the run's latest event: a query cannot move
 * a workflow's clock, so while the run waits (for an approval, say) a reader adds the time since
 * {@code asOf} itself, as {@code plan status} does. ETAs ({@code etaSeconds}, seconds still to
 * go) come from the latest earlier run of this plan with the same operation, named in
 * {@code etaFrom} ("no previous run" when there is none, and then every ETA is null): a VM is
 * expected to take as long as it took then, a group likewise, and the run as long as its groups
 * still to finish. The operator's commit or cleanup is not predicted. {@code timings}: what this
 * run took, for the next one's ETA.
 */
public record PlanStatus(String plan, PlanOperation operation, PlanState state,
    String awaitingStep, Instant commonInstant, List<GroupStatus> groups, List<String> steps,
    List<String> failures, Instant startedAt, Instant endedAt, Long rtoSeconds,
    Instant asOf, Long elapsedSeconds, Long etaSeconds, String etaFrom, PlanTimings timings) {

  /** {@code state}: PENDING, RUNNING, DONE, FAILED or SKIPPED. */
  public record GroupStatus(String name, String state, List<VmStatus> vms,
      List<ActionStatus> actions, Instant startedAt, Instant endedAt, Long elapsedSeconds,
      Long etaSeconds) {}

  /**
   * {@code state}: PENDING, STARTED, the VM workflow's state as it reports it (TESTING,
   * AWAITING_COMMIT), then its end (COMMITTED, CLEANED_UP, PROTECTED, COMPLETED, CANCELLED),
   * SKIPPED or FAILED with {@code error}. {@code elapsedSeconds}: from its start until it was
   * ready (or until now); {@code etaSeconds}: until it is expected to be ready.
   */
  public record VmStatus(String vm, String workflowId, String state, String recoveryPoint,
      Long dataLossSeconds, String error, Instant startedAt, Instant readyAt, Instant endedAt,
      Long elapsedSeconds, Long etaSeconds) {}

  /**
   * {@code when}: before or after the group. {@code state}: PENDING, RUNNING, AWAITING_APPROVAL,
   * DONE, FAILED, SKIPPED (not for this operation). {@code output}: the script's (last 64 KiB).
   */
  public record ActionStatus(String when, String label, String state, String site,
      Integer exitCode, String output, String approvedBy, Instant startedAt, Instant endedAt) {}
}
