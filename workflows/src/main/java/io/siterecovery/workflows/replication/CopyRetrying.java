package io.siterecovery.workflows.replication;

import java.time.Instant;

/**
 * Sent by InitialReplication to the workflow that shows its progress when a disk's copy is still
 * failing after its activity retries: {@code retryAt} is when the disk is started again.
 */
public record CopyRetrying(String disk, String message, Instant retryAt) {
  public static final String SIGNAL = "copyRetrying";
}
