package io.siterecovery.workflows.failover;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.workflows.common.AgentSteps;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.TemporalFailure;
import io.temporal.workflow.Async;
import io.temporal.workflow.CancellationScope;
import io.temporal.workflow.Promise;
import io.temporal.workflow.Workflow;
import java.util.function.Consumer;

/**
 * The split-brain guard of a failover: the source VM is fenced (off, power-on refused) before the
 * replica starts. A planned failover fences a source it has just shut down; an unplanned one tries
 * once and, if the source site does not answer, owes the fence: an activity retried every minute
 * beside the rest of the failover (server-side retries, so waiting adds no history), applied as
 * soon as the site answers. A failover that does not go through drops what it owes and lifts what
 * it applied. Lives in the workflow thread of the failover that owns it.
 */
final class SourceFence {
  private final AgentActivities agents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.shortStep());
  private final AgentActivities quickAttempt =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.oneShortAttempt());
  private final AgentActivities untilReachable =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.untilReachable());

  private final String site;
  private final String vm;
  private final Consumer<String> step;
  private boolean fenced;
  private boolean refused;
  private String description;
  private Promise<Void> owed;
  private CancellationScope owedScope;

  SourceFence(String site, String vm, Consumer<String> step) {
    this.site = site;
    this.vm = vm;
    this.step = step;
  }

  /** A source that answers (a planned failover's): fenced now, retried as any short step. */
  void fence() {
    agents.fenceVm(site, vm);
    applied();
  }

  /** A source presumed lost: fenced if it answers at once, else the fence is owed. */
  void fenceOrOwe() {
    try {
      quickAttempt.fenceVm(site, vm);
      applied();
    } catch (ActivityFailure f) {
      description = "owed: " + site + " did not answer (" + f.getCause().getMessage()
          + "); retried every minute until it does";
      step.accept("source VM not fenced: " + description);
      owedScope = Workflow.newCancellationScope(() -> owed = Async.procedure(this::applyOwed));
      owedScope.run();
    }
  }

  /**
   * Runs beside the rest of the failover. Marks the source fenced as soon as it is, whatever the
   * workflow is doing meanwhile: a cancel must then lift it, and the status must say so.
   */
  private void applyOwed() {
    try {
      untilReachable.fenceVm(site, vm);
      applied();
    } catch (ActivityFailure f) {
      if (owedScope.isCancelRequested()) {
        return; // dropped: see drop
      }
      // Only a non-retryable answer ends the retries: the site answered, and said no.
      refused = true;
      description = "not applied: " + site + " refused the fence (" + f.getCause().getMessage()
          + "); check " + vm + " there before Reprotect";
      step.accept("source VM " + description);
    }
  }

  private void applied() {
    fenced = true;
    description = "fenced on " + site + ": off, and power-on refused until Reprotect or Failback";
    step.accept("source VM " + description);
  }

  /** After a commit: an owed fence is waited for, so the failover ends only once it holds. */
  void awaitOwed() {
    if (owed != null && !fenced) {
      step.accept("waiting for " + site + " to answer: the owed fence is applied before this "
          + "failover ends");
      owed.get();
    }
  }

  /**
   * The failover does not go through: an owed fence is no longer needed. Its cancellation is
   * waited for, as an attempt under way may still apply it (then {@link #lift} lifts it).
   */
  void drop() {
    if (owed == null) {
      return;
    }
    if (!owed.isCompleted()) {
      owedScope.cancel();
      try {
        owed.get();
      } catch (TemporalFailure cancelled) {
        // cancelled before its activity was scheduled: not applied
      }
    }
    if (!fenced && !refused) {
      description = "not needed: the failover did not go through before " + site + " answered";
      step.accept("owed fence of the source VM on " + site + " cancelled");
    }
  }

  /** Lifts the fence, if one was applied: the source may run again. */
  void lift() {
    if (fenced) {
      agents.unfenceVm(site, vm);
      description = "lifted: the failover did not go through";
    }
  }

  /** Whether the source is fenced, and so off: a roll-back powers it on again. */
  boolean fenced() {
    return fenced;
  }

  /** What became of the source VM, for the status; null before the fence was tried. */
  String description() {
    return description;
  }
}
