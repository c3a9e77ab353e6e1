package io.siterecovery.agent.hrl;

import java.nio.ByteBuffer;

/**
 * One tracked change: a write with its data, or a zeroed range (WRITE_ZEROES and TRIM) without
 * data. {@code data} is null for zero records.
 */
public record HrlRecord(short type, long offset, int length, ByteBuffer data) {
  public boolean isZero() {
    return type == HrlFormat.TYPE_ZERO;
  }
}
