package io.siterecovery.workflows.failover;

import java.time.Duration;

/**
 * {@code {"vm":"web01","type":"PLANNED","recoveryPoint":"LATEST",
 * "commitPolicy":{"action":"COMMIT","after":"PT1H"}}}; {@code recoveryPoint} defaults to LATEST,
 * and without {@code commitPolicy} the failover waits for a signal however long it takes.
 * {@code maxTestDuration} (TEST only) shortens the policy's: the test cleans itself up sooner.
 */
public record FailoverInput(String vm, FailoverType type, String recoveryPoint,
    CommitPolicy commitPolicy, Duration maxTestDuration) {
  public FailoverInput(String vm, FailoverType type, String recoveryPoint) {
    this(vm, type, recoveryPoint, null, null);
  }
}
