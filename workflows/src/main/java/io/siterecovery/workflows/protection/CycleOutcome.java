package io.siterecovery.workflows.protection;

import java.time.Instant;

/**
 * One cycle that was due at {@code dueAt}: it RAN, it FAILED, or it was SKIPPED because the
 * workflow was waiting instead (retry back-off, paused, CRITICAL, resync pending or running).
 * A cycle that ran is recorded at the time it started. A cycle still running when the next one
 * would be due skips nothing: the next is due when it ends (ProtectionView#cycleOutcome).
 */
public record CycleOutcome(Instant dueAt, Result result) {
  public enum Result { RAN, FAILED, SKIPPED }
}
