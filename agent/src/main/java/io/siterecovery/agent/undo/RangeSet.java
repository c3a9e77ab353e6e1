package io.siterecovery.agent.undo;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Disjoint byte ranges {@code [start, end)}, merged when they touch. Not thread-safe. */
final class RangeSet {
  private final TreeMap<Long, Long> ranges = new TreeMap<>();

  /** Adds {@code [start, end)} and returns the parts of it that were not covered yet, in order. */
  List<long[]> add(long start, long end) {
    List<long[]> gaps = new ArrayList<>();
    if (end <= start) {
      return gaps;
    }
    long mergedStart = start;
    long mergedEnd = end;
    long cursor = start;
    Map.Entry<Long, Long> lower = ranges.floorEntry(start);
    if (lower != null && lower.getValue() >= start) {
      mergedStart = lower.getKey();
      mergedEnd = Math.max(mergedEnd, lower.getValue());
      cursor = Math.max(cursor, Math.min(lower.getValue(), end));
      ranges.remove(lower.getKey());
    }
    Iterator<Map.Entry<Long, Long>> it =
        ranges.subMap(start, false, end, true).entrySet().iterator();
    while (it.hasNext()) {
      Map.Entry<Long, Long> e = it.next();
      if (e.getKey() > cursor) {
        gaps.add(new long[] {cursor, e.getKey()});
      }
      cursor = Math.max(cursor, Math.min(e.getValue(), end));
      mergedEnd = Math.max(mergedEnd, e.getValue());
      it.remove();
    }
    if (cursor < end) {
      gaps.add(new long[] {cursor, end});
    }
    ranges.put(mergedStart, mergedEnd);
    return gaps;
  }

  int size() {
    return ranges.size();
  }
}
