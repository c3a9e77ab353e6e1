package io.siterecovery.agent.disk;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Disjoint byte ranges {@code [start, end)}, merged when they touch. Not thread-safe. */
final class CoveredRanges {
  private final TreeMap<Long, Long> ranges = new TreeMap<>();
  private long bytes;

  /** The parts of {@code [start, end)} not covered yet, in order. */
  List<long[]> gaps(long start, long end) {
    List<long[]> gaps = new ArrayList<>();
    long cursor = start;
    Map.Entry<Long, Long> lower = ranges.floorEntry(start);
    if (lower != null && lower.getValue() > cursor) {
      cursor = Math.min(lower.getValue(), end);
    }
    for (Map.Entry<Long, Long> e : ranges.subMap(start, false, end, false).entrySet()) {
      if (e.getKey() > cursor) {
        gaps.add(new long[] {cursor, e.getKey()});
      }
      cursor = Math.max(cursor, Math.min(e.getValue(), end));
    }
    if (cursor < end) {
      gaps.add(new long[] {cursor, end});
    }
    return gaps;
  }

  /** Covers {@code [start, end)}. */
  void add(long start, long end) {
    for (long[] gap : gaps(start, end)) {
      bytes += gap[1] - gap[0];
    }
    long mergedStart = start;
    long mergedEnd = end;
    Map.Entry<Long, Long> lower = ranges.floorEntry(start);
    if (lower != null && lower.getValue() >= start) {
      mergedStart = lower.getKey();
      mergedEnd = Math.max(mergedEnd, lower.getValue());
      ranges.remove(lower.getKey());
    }
    var inside = ranges.subMap(start, true, end, true);
    for (long e : inside.values()) {
      mergedEnd = Math.max(mergedEnd, e);
    }
    inside.clear();
    ranges.put(mergedStart, mergedEnd);
  }

  /** The covered ranges, in order. */
  List<long[]> ranges() {
    return ranges.entrySet().stream().map(e -> new long[] {e.getKey(), e.getValue()}).toList();
  }

  /** Total bytes covered. */
  long bytes() {
    return bytes;
  }
}
