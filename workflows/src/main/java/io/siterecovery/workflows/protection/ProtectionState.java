package io.siterecovery.workflows.protection;

public enum ProtectionState {
  ENABLING, INITIAL_REPLICATION, PROTECTED, PAUSED, FAILED_OVER, DISABLED
}
