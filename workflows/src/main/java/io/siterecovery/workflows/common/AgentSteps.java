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

  /** A disk copy: long, heartbeating after every slice so a retry resumes where it stopped. */
  public static ActivityOptions diskCopy() {
    return ActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofHours(24))
        .setHeartbeatTimeout(Duration.ofMinutes(2))
        .setRetryOptions(recoverableRetries())
        .build();
  }

  /** A delta cycle: one attempt; the replication loop owns the back-off so status can show it. */
  public static ActivityOptions deltaCycle() {
    return ActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofMinutes(30))
        .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(1).build())
        .build();
  }

  /**
   * A delta that ships everything the source holds (finalize after the initial copy, a planned
   * failover's final sync): the logs tracked during a days-long copy can take hours at a
   * policy's bandwidth, and the agent call does not heartbeat, so its timeout is the longest a
   * delta may take rather than a short step's 2 minutes. Recoverable errors are retried.
   */
  public static ActivityOptions finalSync() {
    return ActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofHours(12))
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
