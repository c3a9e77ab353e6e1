package io.siterecovery.workflows.failover;

import io.siterecovery.workflows.protection.Progress;
import io.siterecovery.workflows.protection.RecoveryPoint;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

/**
 * The {@code status} query of Failover; {@code steps} is the runbook so far, one line a step.
 * {@code commitPolicy} and {@code decidesItselfAt}: what the failover does by itself if nobody
 * signals, and when (null without a policy, or once decided). {@code test}: the test VM of a
 * TEST failover (null for the others). {@code pointsTried}: each recovery point the replica VM
 * was started at, in order ({@code changeRecoveryPoint}). {@code fence}: what became of the
 * source VM ("fenced on primary", "owed: ..."; null before the failover gets that far).
 * {@code progress}: while COMMITTING a replica recovered from a bucket, its disks' download
 * (bytes local of total, rate, ETA); null otherwise.
 */
public record FailoverStatus(String vm, FailoverType type, FailoverState state, String sourceSite,
    String targetSite, RecoveryPoint recoveryPoint, List<String> steps, String error,
    Instant startedAt, CommitPolicy commitPolicy, Instant decidesItselfAt, TestVmStatus test,
    List<RecoveryPoint> pointsTried, String fence, Progress progress) {

  public FailoverStatus(String vm, FailoverType type, FailoverState state, String sourceSite,
      String targetSite, RecoveryPoint recoveryPoint, List<String> steps, String error,
      Instant startedAt, CommitPolicy commitPolicy, Instant decidesItselfAt, TestVmStatus test,
      List<RecoveryPoint> pointsTried, String fence) {
    this(vm, type, state, sourceSite, targetSite, recoveryPoint, steps, error, startedAt,
        commitPolicy, decidesItselfAt, test, pointsTried, fence, null);
  }

  /**
   * {@code testVm} and its writable NBD {@code exports} once created; {@code cleanupDueAt}: when
   * it cleans itself up (null once cleanup has begun); {@code cleanedUpBy}: the 'cleanup' signal,
   * maxTestDuration or the workflow's cancellation; {@code remaining}: what the last cleanup
   * attempt could not remove.
   */
  public record TestVmStatus(String testVm, List<String> exports, Instant createdAt,
      Duration maxTestDuration, Instant cleanupDueAt, String cleanedUpBy, String notes,
      List<String> remaining) {}
}
