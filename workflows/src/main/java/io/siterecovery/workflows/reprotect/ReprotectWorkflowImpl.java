package io.siterecovery.workflows.reprotect;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.DeltaRequest;
import io.siterecovery.activities.AgentActivityRecords.DiskResyncResult;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.ReprotectPlan;
import io.siterecovery.activities.AgentActivityRecords.ResyncDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.ReverseOutcome;
import io.siterecovery.activities.AgentActivityRecords.Salvaged;
import io.siterecovery.activities.AgentActivityRecords.SeedResult;
import io.siterecovery.activities.AgentActivityRecords.TransferSettings;
import io.siterecovery.activities.FailureTypes;
import io.siterecovery.activities.PlanRunActivities;
import io.siterecovery.activities.PolicyActivities;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.activities.ProtectionPlan.DiskInfo;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.Inputs;
import io.siterecovery.workflows.common.LiveDetails;
import io.siterecovery.workflows.common.StepLog;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.common.VmOperations;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.protection.Progress;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.temporal.api.enums.v1.ParentClosePolicy;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.TemporalFailure;
import io.temporal.workflow.Async;
import io.siterecovery.workflows.Summaries;
import io.temporal.workflow.ChildWorkflowOptions;
import io.temporal.workflow.Workflow;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import org.slf4j.Logger;

/**
 * After a committed failover, protects the VM in the other direction. The old site's copy is
 * fenced (or shut down on request), then turned into the replica of the active site, its
 * unreplicated writes saved first. If its disks equal the failover point, only the ranges changed
 * since travel, then the logs tracked since the commit; if they may hold more, a checksum resync
 * compares them block by block; if they are gone, ProtectVm copies everything. Ends with
 * {@code protect-<vm>} running from the active site to the old one.
 */
public class ReprotectWorkflowImpl implements ReprotectWorkflow {
  private static final Logger log = Workflow.getLogger(ReprotectWorkflowImpl.class);

  private final AgentActivities agents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.shortStep());
  private final AgentActivities longAgents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.diskCopy());
  private final PolicyActivities policies =
      Workflow.newLocalActivityStub(PolicyActivities.class, AgentSteps.policyLookup());
  private final PlanRunActivities runs =
      Workflow.newActivityStub(PlanRunActivities.class, AgentSteps.shortStep());

  private String vm;
  private ReprotectState state = ReprotectState.VALIDATING;
  private ProtectionPlan reverse;
  private ReverseMode mode;
  private long bytesChanged;
  private long bytesSent;
  private Salvaged salvaged;
  private Progress progress;
  private final StepLog steps = new StepLog(log, this::showDetails);
  private String error;
  private Instant startedAt;
  /** The policy's transfer settings (compression, bandwidth) for every byte sent back. */
  private TransferSettings transfer;

  @Override
  public ReprotectStatus reprotect(ReprotectInput input) {
    startedAt = Instant.ofEpochMilli(Workflow.currentTimeMillis());
    Inputs.requireInput(input, "{\"vm\":\"web01\"}");
    vm = Inputs.requireName("vm", input.vm());
    steps.about(vm);
    String policy = input.policy() == null ? "default" : Inputs.requireName("policy",
        input.policy());
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.VM_NAME.valueSet(vm));
    try {
      // Reprotects begun before this look replay without it.
      if (Workflow.getVersion("reprotectRefusesBusyVm", Workflow.DEFAULT_VERSION, 1) == 1) {
        refuseWhileBusy();
      }
      // The protection that follows runs with this policy: an unknown one fails here, before
      // the old site is touched, not in protect-<vm> after all the work below.
      transfer = policies.resolvePolicy(policy).transfer();
      ReprotectPlan plan = agents.planReprotect(vm);
      reverse = new ProtectionPlan(vm, plan.activeSite(), plan.oldSite(), plan.disks());
      bytesChanged = plan.changedBytes();
      Workflow.upsertTypedSearchAttributes(
          SearchAttributeKeys.SOURCE_SITE.valueSet(plan.activeSite()),
          SearchAttributeKeys.TARGET_SITE.valueSet(plan.oldSite()));
      steps.add("reverse replication of " + vm + " from " + plan.activeSite() + " (active) to "
          + plan.oldSite() + "; the copy there is " + plan.oldCopy());
      prepareOldSite(plan, Boolean.TRUE.equals(input.shutDownOldSource()));
      agents.enableReplication(reverse);
      switch (mode) {
        case CHANGED_RANGES -> sendChanges();
        case CHECKSUM_RESYNC -> resync();
        case FULL_COPY -> steps.add("the old site has no disks for " + vm + ": protect-" + vm
            + " copies them in full (initial replication)");
      }
      if (mode != ReverseMode.FULL_COPY) {
        finish();
      }
      startProtection(policy);
    } catch (TemporalFailure e) {
      error = e.getCause() != null ? e.getCause().getMessage() : e.getMessage();
      setState(ReprotectState.FAILED);
      throw e;
    }
    setState(ReprotectState.PROTECTED);
    return status();
  }

  /**
   * An uncommitted failover may still be cancelled, the VM back on the site Reprotect would turn
   * into the replica; one committed but still owing the old site its fence ends once that site
   * answers, which Reprotect needs too. A Failback that started this Reprotect is not in its way.
   */
  private void refuseWhileBusy() {
    Map<String, String> conflicting = new LinkedHashMap<>();
    conflicting.put(FailoverWorkflow.workflowId(vm), "commit it first (or cancel it: then there "
        + "is nothing to reprotect); a committed failover still running waits for the old site "
        + "to answer and be fenced");
    conflicting.put(FailbackWorkflow.workflowId(vm), "it reprotects the VM itself once its "
        + "failover home is committed");
    Workflow.getInfo().getParentWorkflowId().ifPresent(conflicting::remove);
    VmOperations.refuseWhileRunning(runs, vm, "Reprotect", conflicting);
  }

  /** Two copies must never run: the old one is fenced already, or shut down now if asked. */
  private void prepareOldSite(ReprotectPlan plan, boolean shutDown) {
    if (plan.oldCopy().equals("MISSING")) {
      mode = ReverseMode.FULL_COPY;
      return;
    }
    if (plan.oldCopy().equals("RUNNING")) {
      if (!shutDown) {
        throw ApplicationFailure.newNonRetryableFailure("VM " + vm + " is running on "
            + plan.oldSite() + " (that site did not answer when the failover fenced it); shut it"
            + " down there, or start Reprotect with \"shutDownOldSource\":true", 
            FailureTypes.OLD_SOURCE_RUNNING);
      }
      setState(ReprotectState.SHUTTING_DOWN_OLD_SOURCE);
      agents.powerOff(plan.oldSite(), vm);
      steps.add("the old copy on " + plan.oldSite() + " was running: shut down as asked");
    }
    setState(ReprotectState.PREPARING_OLD_SITE);
    ReverseOutcome outcome = agents.reverseOldSource(plan.oldSite(), vm, plan.activeSite());
    salvaged = outcome.salvaged();
    if (salvaged != null) {
      steps.add("SALVAGED: the old copy held " + salvaged.bytes() + " bytes in " + salvaged.rangeCount()
          + " ranges that never reached the replica (written " + salvaged.firstWrite() + " .. "
          + salvaged.lastWrite() + "); kept on " + salvaged.site() + " as " + salvaged.id()
          + " (" + salvaged.path() + ") until you delete them");
    }
    mode = outcome.resyncReason() == null ? ReverseMode.CHANGED_RANGES
        : ReverseMode.CHECKSUM_RESYNC;
    String replica = outcome.replica() != null ? outcome.replica()
        : "the old copy on " + plan.oldSite();
    steps.add(replica + " is now the replica of " + plan.activeSite()
        + (outcome.resyncReason() == null ? "; its disks equal the failover point"
            : "; its disks are compared block by block: " + outcome.resyncReason()));
  }

  private void sendChanges() {
    setState(ReprotectState.SENDING_CHANGES);
    long ranges = 0;
    for (DiskInfo disk : reverse.disks()) {
      SeedResult r = longAgents.sendChangedRanges(reverse, disk.name(), transfer);
      ranges += r.ranges();
      bytesSent += r.bytesSent();
    }
    steps.add("sent the " + ranges + " ranges changed since the failover: " + bytesSent + " bytes of "
        + bytesChanged + " changed");
  }

  private void resync() {
    setState(ReprotectState.RESYNCING);
    long generation = agents.beginResync(reverse);
    long differing = 0;
    long compared = 0;
    for (DiskInfo disk : reverse.disks()) {
      DiskResyncResult r = longAgents.resyncDisk(new ResyncDiskRequest(reverse, disk.name(),
          disk.sizeBytes(), transfer, Workflow.getInfo().getWorkflowId()));
      differing += r.blocksDiffering();
      compared += r.blocksCompared();
      bytesSent += r.bytesSent();
    }
    agents.completeResync(reverse);
    steps.add("checksum resync at generation " + generation + ": " + differing + " of " + compared
        + " blocks differed, " + bytesSent + " bytes sent");
  }

  /** Ships what the VM wrote since the commit (or the resync), then the replica is complete. */
  private void finish() {
    setState(ReprotectState.FINALIZING);
    ReplicationCycle last = agents.replicateDelta(new DeltaRequest(reverse, null, false,
        transfer));
    bytesSent += last.bytesShipped();
    agents.completeInitialReplication(reverse);
    steps.add("logs since then shipped (" + last.logsShipped() + " logs, " + last.bytesShipped()
        + " bytes): the replica on " + reverse.targetSite() + " equals " + vm + " at "
        + "rp-" + last.appliedGeneration() + "; " + bytesSent + " bytes sent in all");
  }

  /** protect-<vm> outlives this workflow: it is the protection from now on. */
  private void startProtection(String policy) {
    setState(ReprotectState.STARTING_PROTECTION);
    ProtectVmWorkflow protection = Workflow.newChildWorkflowStub(ProtectVmWorkflow.class,
        ChildWorkflowOptions.newBuilder()
            .setWorkflowId(ProtectVmWorkflow.workflowId(vm))
            .setParentClosePolicy(ParentClosePolicy.PARENT_CLOSE_POLICY_ABANDON)
            .setStaticSummary(Summaries.protect(vm, policy, reverse.sourceSite(),
                reverse.targetSite()))
            .build());
    Async.function(protection::protect, new ProtectVmInput(vm, policy));
    Workflow.getWorkflowExecution(protection).get();
    steps.add(ProtectVmWorkflow.workflowId(vm) + " started: " + vm + " is protected from "
        + reverse.sourceSite() + " to " + reverse.targetSite() + " with policy " + policy);
  }

  private void setState(ReprotectState next) {
    state = next;
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.PROTECTION_STATE.valueSet(
        "REPROTECT_" + next.name()));
    showDetails();
  }

  /** The Web UI's current details: state, direction, the resync's bar, bytes sent, last step. */
  private void showDetails() {
    ReprotectStatus s = status();
    LiveDetails.of(s.state()).progress(s.progress())
        .line("Direction", s.sourceSite() == null ? null
            : s.sourceSite() + " (active) → " + s.targetSite())
        .line("Mode", s.mode() == null ? null : s.mode().name())
        .line("Sent", s.bytesSent() + " bytes for " + s.bytesChanged() + " changed")
        .line("Salvaged", s.salvaged() == null ? null : s.salvaged().bytes() + " bytes kept on "
            + s.targetSite())
        .line("Error", s.error())
        .line("Last", steps.last())
        .show();
  }


  @Override
  public void copyProgress(CopyProgress p) {
    Long eta = p.bytesPerSecond() > 0
        ? (long) Math.ceil((p.bytesTotal() - p.bytesDone()) / p.bytesPerSecond()) : null;
    progress = new Progress(p.phase(), p.disk(), p.bytesDone(), p.bytesTotal(),
        p.bytesPerSecond(), eta);
    showDetails();
  }

  @Override
  public ReprotectStatus status() {
    return new ReprotectStatus(vm, state, reverse == null ? null : reverse.sourceSite(),
        reverse == null ? null : reverse.targetSite(), mode, bytesChanged, bytesSent, salvaged,
        state == ReprotectState.RESYNCING ? progress : null, steps.list(), error,
        startedAt);
  }
}
