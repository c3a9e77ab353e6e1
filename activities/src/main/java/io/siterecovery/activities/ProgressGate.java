package io.siterecovery.activities;

/**
 * Decides which progress reports of one disk's copy or resync go out. Each report is a signal, an
 * event in the history of the workflow that shows it (ProtectVm lives for years, under
 * Temporal's 51,200-event limit), so their number must not grow with the disk: a report goes out
 * only when the disk has passed another whole percent <em>and</em> {@link #MIN_SPACING_NANOS}
 * has passed since the last one, and always at the end. That is at most 100 reports per disk
 * and attempt whatever its size, and none more often than every 2 s for a small disk.
 */
final class ProgressGate {
  static final long MIN_SPACING_NANOS = 2_000_000_000L;

  private final long total;
  private long lastPercent;
  private long lastNanos;
  private boolean ended;

  /** {@code done}: where this attempt starts (a resumed copy does not report it again). */
  ProgressGate(long total, long done, long nowNanos) {
    this.total = total;
    this.lastPercent = percent(done);
    this.lastNanos = nowNanos;
  }

  /** Whether to report {@code done} bytes now; true at most once at the end. */
  boolean shouldReport(long done, long nowNanos) {
    if (ended) {
      return false;
    }
    if (done >= total) {
      ended = true;
      return true;
    }
    long percent = percent(done);
    if (percent > lastPercent && nowNanos - lastNanos >= MIN_SPACING_NANOS) {
      lastPercent = percent;
      lastNanos = nowNanos;
      return true;
    }
    return false;
  }

  private long percent(long done) {
    return total <= 0 ? 100 : Math.min(100, done * 100 / total);
  }
}
