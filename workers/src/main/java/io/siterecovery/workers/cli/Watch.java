package io.siterecovery.workers.cli;

import io.siterecovery.workers.cli.WatchRenderer.Frame;
import io.siterecovery.workers.cli.WatchRenderer.Outcome;
import io.siterecovery.workers.dev.ProgressLine;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.failback.FailbackStatus;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.plan.PlanState;
import io.siterecovery.workflows.plan.PlanStatus;
import io.siterecovery.workflows.protection.Progress;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.reprotect.ReprotectState;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.grpc.StatusRuntimeException;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowException;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Supplier;

/**
 * {@code --watch}: polls a workflow's {@code status} query once a second and draws it until the
 * workflow reaches the state the verb is for, or one it will not leave without the operator.
 */
final class Watch {
  private static final Duration EVERY = Duration.ofSeconds(1);
  /**
   * A query may fail until the workflow's first task has run, or while the server or a worker
   * restarts; failing longer than this is an error.
   */
  private static final Duration QUERY_PATIENCE = Duration.ofSeconds(30);

  private Watch() {}

  /** One poll: the status as queried (the JSON result when watching ends), drawn as a frame. */
  record Poll(Object status, Frame frame) {}

  /** Polls until a frame has an outcome, or the workflow has closed without reaching one. */
  static Poll until(WorkflowClient client, String workflowId, Supplier<Poll> poll,
      WatchRenderer renderer) {
    long failingSince = 0;
    while (true) {
      Poll p;
      try {
        p = poll.get();
        failingSince = 0;
      } catch (WorkflowException | StatusRuntimeException e) {
        long now = System.nanoTime();
        failingSince = failingSince == 0 ? now : failingSince;
        if (now - failingSince > QUERY_PATIENCE.toNanos()) {
          throw e;
        }
        pause();
        continue;
      }
      if (p.frame().outcome() == null) {
        WorkflowExecutionStatus closed = client.newUntypedWorkflowStub(workflowId).describe()
            .getStatus();
        if (closed != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING) {
          Frame f = p.frame();
          p = new Poll(p.status(), new Frame(f.state(), f.steps(), f.fraction(),
              workflowId + " closed: " + closed.name().replace(
                  "WORKFLOW_EXECUTION_STATUS_", ""), Outcome.NOT_REACHED));
        }
      }
      renderer.show(p.frame());
      if (p.frame().outcome() != null) {
        return p;
      }
      pause();
    }
  }

  private static void pause() {
    try {
      Thread.sleep(EVERY.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while watching", e);
    }
  }

  static int exitCode(Poll p) {
    return p.frame().outcome() == Outcome.REACHED ? 0 : 1;
  }

  /** ProtectVm: the copy's progress, then the latest point; it is there once PROTECTED. */
  static Frame protect(ProtectionStatus s) {
    Outcome outcome = switch (s.state()) {
      case PROTECTED -> Outcome.REACHED;
      case DISABLED, FAILED_OVER -> Outcome.NOT_REACHED;
      default -> null;
    };
    String detail = s.progress() != null ? ProgressLine.of(s.progress())
        : s.latestRecoveryPoint() == null ? null : "latest point "
            + s.latestRecoveryPoint().id() + ", RPO " + s.rpoSeconds() + " s";
    List<String> steps = new ArrayList<>(s.notes());
    s.healthReasons().forEach(r -> steps.add("! " + r));
    String health = s.health() == Health.NORMAL ? "" : "  health " + s.health();
    return new Frame(s.state().name() + health, steps,
        fraction(s.progress(), s.state() == ProtectionState.PROTECTED), detail, outcome);
  }

  private static Double fraction(Progress p, boolean complete) {
    return p != null ? Double.valueOf(ProgressLine.fraction(p)) : complete ? Double.valueOf(1.0)
        : null;
  }

  /** The states a failover of each type passes through to the one the operator acts on. */
  private static final Map<FailoverType, List<FailoverState>> PATHS = Map.of(
      FailoverType.PLANNED, List.of(FailoverState.VALIDATING, FailoverState.SHUTTING_DOWN_SOURCE,
          FailoverState.SYNCHRONIZING, FailoverState.STARTING_REPLICA,
          FailoverState.AWAITING_COMMIT),
      FailoverType.UNPLANNED, List.of(FailoverState.VALIDATING, FailoverState.ROLLING_BACK,
          FailoverState.STARTING_REPLICA, FailoverState.AWAITING_COMMIT),
      FailoverType.TEST, List.of(FailoverState.VALIDATING, FailoverState.CREATING_TEST_VM,
          FailoverState.TESTING));

  /**
   * Failover: where it is on its way, as a share of the states it passes; it ends where the
   * operator acts (AWAITING_COMMIT, TESTING) or at its end.
   */
  static Frame failover(FailoverStatus f, Instant now) {
    Outcome outcome = switch (f.state()) {
      case AWAITING_COMMIT, COMMITTED, CANCELLED, TESTING, CLEANED_UP -> Outcome.REACHED;
      case FAILED -> Outcome.NOT_REACHED;
      default -> null;
    };
    List<FailoverState> path = PATHS.get(f.type());
    int at = path.indexOf(f.state());
    Double fraction = outcome == Outcome.REACHED ? Double.valueOf(1.0)
        : at < 0 ? null : (double) at / (path.size() - 1);
    String detail = (at < 0 ? "" : "step " + (at + 1) + " of " + path.size() + ", ")
        + (f.startedAt() == null ? "" : "elapsed "
            + Math.max(0, Duration.between(f.startedAt(), now).toSeconds()) + " s")
        + (f.error() == null ? "" : ", error: " + f.error());
    return new Frame(f.state().name(), f.steps(), fraction, detail.isEmpty() ? null : detail,
        outcome);
  }

  /** Reprotect: the reverse copy's progress; it ends when the new protection is PROTECTED. */
  static Frame reprotect(ReprotectStatus r) {
    Outcome outcome = r.state() == ReprotectState.PROTECTED ? Outcome.REACHED
        : r.state() == ReprotectState.FAILED ? Outcome.NOT_REACHED : null;
    String detail = r.progress() != null ? ProgressLine.of(r.progress())
        : r.error() != null ? "error: " + r.error() : null;
    return new Frame(r.state().name(), r.steps(), fraction(r.progress(),
        r.state() == ReprotectState.PROTECTED), detail, outcome);
  }

  /**
   * Failback: while it fails over, {@code failover} is failover-&lt;vm&gt;'s own status (null
   * until that has started); it waits for the operator once that awaits commit.
   */
  static Frame failback(FailbackStatus b, FailoverStatus failover, Instant now) {
    List<String> steps = new ArrayList<>(b.steps());
    Frame inner = failover == null ? null : failover(failover, now);
    if (inner != null) {
      inner.steps().forEach(st -> steps.add(FailoverWorkflow.workflowId(b.vm()) + ": " + st));
    }
    Outcome outcome = switch (b.state()) {
      case COMPLETED, CANCELLED -> Outcome.REACHED;
      case FAILED -> Outcome.NOT_REACHED;
      case FAILING_OVER -> failover != null && failover.state() == FailoverState.AWAITING_COMMIT
          ? Outcome.REACHED : null;
      default -> null;
    };
    String state = b.state().name() + (inner == null ? "" : " (failover " + inner.state() + ")");
    return new Frame(state, steps, inner == null ? null : inner.fraction(),
        inner == null ? b.error() : inner.detail(), outcome);
  }

  /**
   * A recovery plan: VMs ready, elapsed time and ETA as of now; it ends at its end or where it
   * waits for an approval, a commit or a cleanup.
   */
  static Frame plan(PlanStatus raw, Instant now) {
    PlanStatus s = PlanReport.asOf(raw, now);
    Outcome outcome = switch (s.state()) {
      case COMPLETED, AWAITING_APPROVAL, AWAITING_COMMIT, AWAITING_CLEANUP -> Outcome.REACHED;
      case FAILED -> Outcome.NOT_REACHED;
      default -> null;
    };
    long vms = s.groups().stream().mapToLong(g -> g.vms().size()).sum();
    long ready = s.groups().stream().flatMap(g -> g.vms().stream())
        .filter(v -> v.readyAt() != null || v.endedAt() != null).count();
    Double fraction = s.state() == PlanState.COMPLETED ? Double.valueOf(1.0)
        : s.elapsedSeconds() != null && s.etaSeconds() != null
            && s.elapsedSeconds() + s.etaSeconds() > 0
            ? (double) s.elapsedSeconds() / (s.elapsedSeconds() + s.etaSeconds())
            : vms > 0 ? (double) ready / vms : null;
    String detail = ready + " of " + vms + " VM(s) ready"
        + (s.elapsedSeconds() == null ? "" : ", elapsed " + s.elapsedSeconds() + " s")
        + (s.etaSeconds() == null ? "" : ", ETA " + s.etaSeconds() + " s")
        + (s.awaitingStep() == null ? "" : ", waiting for approval of: " + s.awaitingStep());
    List<String> steps = new ArrayList<>(s.steps());
    s.failures().forEach(f -> steps.add("! " + f));
    return new Frame(s.state().name(), steps, fraction, detail, outcome);
  }
}
