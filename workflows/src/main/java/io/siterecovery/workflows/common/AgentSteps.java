package io.siterecovery.workflows.common;

import io.temporal.activity.ActivityCancellationType;
import io.temporal.activity.ActivityOptions;
import io.temporal.activity.LocalActivityOptions;
import io.temporal.common.RetryOptions;
import java.time.Duration;

/**
 * Activity options shared by the runbooks. Recoverable agent errors are retried after 1, 2, 4, 8
 * and 10 minutes (the seeds' schedule); non-recoverable ones are non-retryable failures already.
 */
public final class AgentSteps {
  /** Deltas heartbeat every 3 s (AgentActivitiesImpl); ten missed beats mean a lost worker. */
  static final Duration DELTA_HEARTBEAT_TIMEOUT = Duration.ofSeconds(30);

  private AgentSteps() {}

  public static RetryOptions recoverableRetries() {
    return RetryOptions.newBuilder()
        .setInitialInterval(Duration.ofMinutes(1))
        .setBackoffCoefficient(2.0)
        .setMaximumInterval(Duration.ofMinutes(10))
        .setMaximumAttempts(6)
        .build();
  }

  /** A short agent call: power, plan, enable, finalize. */
  public static ActivityOptions shortStep() {
    return ActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofMinutes(2))
        .setRetryOptions(recoverableRetries())
        .build();
  }

  /**
   * A disk copy or resync: long, heartbeating its offset every ~3 s (one agent call) so that a
   * retry resumes where it stopped. The heartbeat timeout is short so that a dead worker is noticed
   * within 15 s; the worker sends heartbeats at most every 4 s (WorkerRunner's throttle), so a
   * retry sends again at most the ~4 s of data since the last recorded heartbeat. The retries
   * start after 5 s, not after the seeds' 1 minute: the usual cause here is a lost worker, and a
   * new attempt on another worker resumes at once (the copy should be back within 30 s of a
   * crash). A failing agent still backs off, doubling to every 10 minutes: 10 attempts cover
   * about 30 minutes of agent errors (the seeds' 1-10 minute schedule covers 25) before the
   * runbook's own 30-minute stage takes over, and leave room for several worker crashes during
   * one disk. Non-recoverable errors never retry.
   */
  public static ActivityOptions diskCopy() {
    return ActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofHours(24))
        .setHeartbeatTimeout(Duration.ofSeconds(15))
        .setRetryOptions(RetryOptions.newBuilder()
            .setInitialInterval(Duration.ofSeconds(5))
            .setBackoffCoefficient(2.0)
            .setMaximumInterval(Duration.ofMinutes(10))
            .setMaximumAttempts(10)
            .build())
        .build();
  }

  /**
   * A delta cycle: one attempt; the replication loop owns the back-off so status can show it.
   * The activity heartbeats while the agent ships, so a lost worker fails the attempt after
   * {@link #DELTA_HEARTBEAT_TIMEOUT}, not after the whole start-to-close timeout.
   */
  public static ActivityOptions deltaCycle() {
    return ActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofMinutes(30))
        .setHeartbeatTimeout(DELTA_HEARTBEAT_TIMEOUT)
        .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(1).build())
        .build();
  }

  /**
   * A delta that ships everything the source holds (finalize after the initial copy, a planned
   * failover's final sync): the logs tracked during a days-long copy can take hours at a
   * policy's bandwidth, so its timeout is the longest a delta may take rather than a short
   * step's 2 minutes; the heartbeat while it ships notices a lost worker within seconds.
   * Recoverable errors are retried.
   */
  public static ActivityOptions finalSync() {
    return ActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofHours(12))
        .setHeartbeatTimeout(DELTA_HEARTBEAT_TIMEOUT)
        .setRetryOptions(recoverableRetries())
        .build();
  }

  /** One quick attempt at a step whose failure the runbook handles itself (a fence, say). */
  public static ActivityOptions oneShortAttempt() {
    return ActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofMinutes(2))
        .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(1).build())
        .build();
  }

  /**
   * A step owed to a site that does not answer (a fence): tried every minute for as long as it
   * takes. The server retries it, so waiting adds nothing to the workflow's history. A cancel
   * waits until the server confirms it, so the workflow knows whether an attempt under way got
   * through (and must be undone).
   */
  public static ActivityOptions untilReachable() {
    return ActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofMinutes(2))
        .setCancellationType(ActivityCancellationType.WAIT_CANCELLATION_COMPLETED)
        .setRetryOptions(RetryOptions.newBuilder()
            .setInitialInterval(Duration.ofMinutes(1))
            .setBackoffCoefficient(1.0)
            .setMaximumInterval(Duration.ofMinutes(1))
            .build())
        .build();
  }

  /** Reading a policy from the worker's configuration: local, quick, and worth only a few tries. */
  public static LocalActivityOptions policyLookup() {
    return LocalActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofSeconds(10))
        .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(3).build())
        .build();
  }
}
