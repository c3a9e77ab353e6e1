package io.siterecovery.workflows.protection;

public enum ProtectionState {
  ENABLING, INITIAL_REPLICATION, PROTECTED, RESYNC_PENDING, RESYNCING, PAUSED, FAILED_OVER,
  DISABLED
}
