package io.siterecovery.workflows.protection;

/**
 * Sent by a Failover workflow to the VM's ProtectVm workflow so that they take turns.
 * {@code resyncRequired}: the replica no longer continues the source's log sequence (it was
 * rolled back or written to), so protection must resync before shipping logs again.
 */
public record FailoverNotice(String failoverWorkflowId, Stage stage, boolean resyncRequired) {
  public enum Stage { STARTED, COMMITTED, CANCELLED }
}
