package io.siterecovery.workflows.replication;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.CopyDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.activities.ProtectionPlan.DiskInfo;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.LiveDetails;
import io.siterecovery.workflows.common.RetrySchedule;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.CanceledFailure;
import io.temporal.workflow.SignalExternalWorkflowException;
import io.temporal.workflow.Workflow;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;

public class InitialReplicationWorkflowImpl implements InitialReplicationWorkflow {
  private static final Logger log = Workflow.getLogger(InitialReplicationWorkflowImpl.class);

  private final AgentActivities agents =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.diskCopy());

  /**
   * The activity retries 1-10 minutes apart; a longer outage must not end protection, so after
   * those the disk is started again every 30 minutes (the seeds' second stage).
   */
  private DiskCopyResult copyWithLongRetries(InitialReplicationInput input, DiskInfo disk) {
    int rounds = 0;
    while (true) {
      try {
        return agents.copyDisk(new CopyDiskRequest(input.plan(), disk.name(), disk.sizeBytes(),
            input.transfer(), input.progressWorkflowId(),
            input.copiedBytes() == null ? null : input.copiedBytes().get(disk.name())));
      } catch (ActivityFailure f) {
        // A cancel (ProtectVm's disable or pause) ends the copy; it is no failure to wait out.
        if (f.getCause() instanceof ApplicationFailure a && a.isNonRetryable()
            || f.getCause() instanceof CanceledFailure) {
          throw f;
        }
        rounds++;
        showDetails(input, disk, "retrying: " + f.getCause().getMessage() + "; again at "
            + Instant.ofEpochMilli(Workflow.currentTimeMillis()).plus(RetrySchedule.LONG_TERM)
            + " (round " + rounds + ")");
        log.warn("copy of {}/{} still failing after its retries ({}); trying again in {} "
            + "(round {})", input.plan().vm(), disk.name(), f.getCause().getMessage(),
            RetrySchedule.LONG_TERM, rounds);
        reportRetrying(input, disk, f);
        Workflow.sleep(RetrySchedule.LONG_TERM);
      }
    }
  }

  /** So ProtectVm's health shows the outage (WARNING) instead of a copy quietly waiting. */
  private static void reportRetrying(InitialReplicationInput input, DiskInfo disk,
      ActivityFailure f) {
    if (input.progressWorkflowId() == null
        || Workflow.getVersion("reportCopyRetries", Workflow.DEFAULT_VERSION, 1) != 1) {
      return;
    }
    String message = f.getCause() instanceof ApplicationFailure a ? a.getOriginalMessage()
        : f.getCause().getMessage();
    Instant retryAt = Instant.ofEpochMilli(Workflow.currentTimeMillis())
        .plus(RetrySchedule.LONG_TERM);
    try {
      Workflow.newUntypedExternalWorkflowStub(input.progressWorkflowId())
          .signal(CopyRetrying.SIGNAL, new CopyRetrying(disk.name(), message, retryAt));
    } catch (SignalExternalWorkflowException gone) {
      // Whoever showed the progress is gone; the copy goes on regardless.
    }
  }

  /**
   * The Web UI's current details: which disk is being copied. The bytes, rate and ETA are on
   * ProtectVm's page, where the copy reports its progress.
   */
  private static void showDetails(InitialReplicationInput input, DiskInfo disk, String retry) {
    List<DiskInfo> disks = input.plan().disks();
    LiveDetails.of("COPYING")
        .count("Disks copied", disks.indexOf(disk), disks.size())
        .line("Disk", disk.name() + " (" + LiveDetails.size(disk.sizeBytes()) + ")")
        .line("Copy", retry)
        .line("Progress", input.progressWorkflowId() == null ? null
            : "on " + input.progressWorkflowId() + "'s page")
        .show();
  }

  @Override
  public InitialReplicationResult replicate(InitialReplicationInput input) {
    long started = Workflow.currentTimeMillis();
    List<DiskCopyResult> results = new ArrayList<>();
    // One disk at a time, as the seeds ask: bandwidth stays predictable and progress is per disk.
    for (DiskInfo disk : input.plan().disks()) {
      showDetails(input, disk, null);
      DiskCopyResult r = copyWithLongRetries(input, disk);
      log.info("copied {}/{}: {} bytes read, {} sent in {} ms", input.plan().vm(), disk.name(),
          r.bytesRead(), r.bytesSent(), r.durationMillis());
      results.add(r);
    }
    return new InitialReplicationResult(results,
        results.stream().mapToLong(DiskCopyResult::bytesRead).sum(),
        results.stream().mapToLong(DiskCopyResult::bytesSent).sum(),
        Workflow.currentTimeMillis() - started);
  }
}
