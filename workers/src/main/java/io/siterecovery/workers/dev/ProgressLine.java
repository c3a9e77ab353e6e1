package io.siterecovery.workers.dev;

import io.siterecovery.workflows.protection.Progress;

/** One line of progress: phase, disk, percent, bytes, rate and ETA; and the bar drawn before it. */
public final class ProgressLine {
  private ProgressLine() {}

  public static String of(Progress p) {
    return String.format("%s %s %3.0f%%  %d / %d MiB  %.0f MB/s  ETA %s",
        p.phase(), p.disk() == null ? "" : p.disk(), 100 * fraction(p), p.bytesDone() >> 20,
        p.bytesTotal() >> 20, p.bytesPerSecond() / 1e6,
        p.etaSeconds() == null ? "-" : p.etaSeconds() + " s");
  }

  /** Share of the phase done, 0 before its size is known. */
  public static double fraction(Progress p) {
    return p.bytesTotal() > 0 ? Math.min(1.0, (double) p.bytesDone() / p.bytesTotal()) : 0;
  }

  /** {@code [#####.....]} with {@code width} cells, {@code fraction} (0..1) of them filled. */
  public static String bar(double fraction, int width) {
    int filled = (int) Math.round(Math.max(0, Math.min(1, fraction)) * width);
    return "[" + "#".repeat(filled) + ".".repeat(width - filled) + "]";
  }
}
