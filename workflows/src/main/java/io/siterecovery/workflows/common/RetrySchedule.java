package io.siterecovery.workflows.common;

import java.time.Duration;
import java.util.List;

/** The seeds' schedule for recoverable errors: 1, 2, 4, 8, 10 minutes, then every 30 minutes. */
public final class RetrySchedule {
  private static final List<Duration> FIRST = List.of(Duration.ofMinutes(1), Duration.ofMinutes(2),
      Duration.ofMinutes(4), Duration.ofMinutes(8), Duration.ofMinutes(10));
  public static final Duration LONG_TERM = Duration.ofMinutes(30);

  private RetrySchedule() {}

  /** Delay before the next attempt after {@code failures} consecutive failures (1-based). */
  public static Duration delayAfter(int failures) {
    return failures <= FIRST.size() ? FIRST.get(failures - 1) : LONG_TERM;
  }
}
