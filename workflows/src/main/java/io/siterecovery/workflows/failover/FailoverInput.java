package io.siterecovery.workflows.failover;

/**
 * {@code {"vm":"web01","type":"PLANNED","recoveryPoint":"LATEST",
 * "commitPolicy":{"action":"COMMIT","after":"PT1H"}}}; {@code recoveryPoint} defaults to LATEST,
 * and without {@code commitPolicy} the failover waits for a signal however long it takes.
 */
public record FailoverInput(String vm, FailoverType type, String recoveryPoint,
    CommitPolicy commitPolicy) {
  public FailoverInput(String vm, FailoverType type, String recoveryPoint) {
    this(vm, type, recoveryPoint, null);
  }
}
