package io.siterecovery.workflows.protection;

import java.time.Instant;

/** A crash-consistent point: the source's state when log generation {@code generation} sealed. */
public record RecoveryPoint(String id, long generation, Instant time) {
  public static RecoveryPoint of(long generation, Instant time) {
    return new RecoveryPoint("rp-" + generation, generation, time);
  }
}
