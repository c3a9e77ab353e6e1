package io.siterecovery.workers.dev;

import io.siterecovery.workflows.protection.Progress;

/** One line of progress: phase, disk, percent, bytes, rate and ETA. */
public final class ProgressLine {
  private ProgressLine() {}

  public static String of(Progress p) {
    double pct = p.bytesTotal() > 0 ? 100.0 * p.bytesDone() / p.bytesTotal() : 0;
    return String.format("%s %s %3.0f%%  %d / %d MiB  %.0f MB/s  ETA %s",
        p.phase(), p.disk() == null ? "" : p.disk(), pct, p.bytesDone() >> 20,
        p.bytesTotal() >> 20, p.bytesPerSecond() / 1e6,
        p.etaSeconds() == null ? "-" : p.etaSeconds() + " s");
  }
}
