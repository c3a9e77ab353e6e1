package io.siterecovery.workflows.protection;

import java.time.Instant;

/**
 * One cycle that was due at {@code dueAt}: it RAN, it FAILED, or it was SKIPPED because the
 * workflow was waiting instead (retry back-off, paused, CRITICAL, resync pending or running).
 */
public record CycleOutcome(Instant dueAt, Result result) {
  public enum Result { RAN, FAILED, SKIPPED }
}
