package io.siterecovery.workflows.reprotect;

/** From VALIDATING to PROTECTED (reverse protection running) or FAILED. */
public enum ReprotectState {
  VALIDATING, SHUTTING_DOWN_OLD_SOURCE, PREPARING_OLD_SITE, SENDING_CHANGES, RESYNCING,
  FINALIZING, STARTING_PROTECTION, PROTECTED, FAILED
}
