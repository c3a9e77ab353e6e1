package io.siterecovery.activities;

import java.time.Instant;
import java.time.LocalTime;
import java.time.ZoneId;
import java.time.ZonedDateTime;

/**
 * The daily window in which automatic resyncs may run, e.g. 22:00-06:00 in a time zone; a window
 * whose end is before its start spans midnight. Pure time arithmetic, safe in workflow code.
 */
public record ResyncWindow(LocalTime start, LocalTime end, String timeZone) {

  public boolean contains(Instant at) {
    LocalTime t = at.atZone(ZoneId.of(timeZone)).toLocalTime();
    if (start.equals(end)) {
      return true;
    }
    return start.isBefore(end)
        ? !t.isBefore(start) && t.isBefore(end)
        : !t.isBefore(start) || t.isBefore(end);
  }

  /** {@code at} itself when inside the window, else the next start of the window. */
  public Instant nextOpening(Instant at) {
    if (contains(at)) {
      return at;
    }
    ZonedDateTime local = at.atZone(ZoneId.of(timeZone));
    ZonedDateTime today = local.with(start);
    return (today.isAfter(local) ? today : today.plusDays(1)).toInstant();
  }
}
