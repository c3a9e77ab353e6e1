package io.siterecovery.workflows.protection;

/** Sent by a Failover workflow to the VM's ProtectVm workflow so that they take turns. */
public record FailoverNotice(String failoverWorkflowId, Stage stage) {
  public enum Stage { STARTED, COMMITTED, CANCELLED }
}
