package io.siterecovery.workflows.plan;

import java.time.Instant;
import java.util.List;

/**
 * The {@code status} query and the result of a RecoveryPlan run: the drill report. Per group and
 * per VM the state, its workflow, the point it runs at and its data-loss window (how old that
 * point was when the run started), the actions with their outcome and who approved what, every
 * step with its time, and the achieved RTO: from the start of the run until the last VM ran.
 * {@code commonInstant}: the instant LATEST_COMMON chose (null otherwise).
 */
public record PlanStatus(String plan, PlanOperation operation, PlanState state,
    String awaitingStep, Instant commonInstant, List<GroupStatus> groups, List<String> steps,
    List<String> failures, Instant startedAt, Instant endedAt, Long rtoSeconds) {

  public record GroupStatus(String name, String state, List<VmStatus> vms,
      List<ActionStatus> actions) {}

  /**
   * {@code state}: PENDING, STARTED, the VM workflow's state as it reports it (TESTING,
   * AWAITING_COMMIT), then its end (COMMITTED, CLEANED_UP, PROTECTED, COMPLETED, CANCELLED),
   * SKIPPED or FAILED with {@code error}.
   */
  public record VmStatus(String vm, String workflowId, String state, String recoveryPoint,
      Long dataLossSeconds, String error, Instant startedAt, Instant readyAt, Instant endedAt) {}

  /**
   * {@code when}: before or after the group. {@code state}: PENDING, RUNNING, AWAITING_APPROVAL,
   * DONE, FAILED, SKIPPED (not for this operation). {@code output}: the script's (last 64 KiB).
   */
  public record ActionStatus(String when, String label, String state, String site,
      Integer exitCode, String output, String approvedBy, Instant startedAt, Instant endedAt) {}
}
