package io.siterecovery.agent.scripts;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * Reads a process's output to its end on a thread of its own, keeping the last
 * {@link PlanScripts#OUTPUT_TAIL} bytes: memory stays bounded however much a script prints.
 */
final class OutputTail {
  /** The output kept, as text, and whether earlier output was dropped. */
  record Tail(String text, boolean truncated) {}

  private final byte[] ring;
  private long total;
  private final Thread reader;

  private OutputTail(InputStream in, int capacity, String threadName) {
    this.ring = new byte[capacity];
    this.reader = new Thread(() -> drain(in), threadName);
    reader.setDaemon(true);
  }

  static OutputTail start(InputStream in, String threadName) {
    return start(in, PlanScripts.OUTPUT_TAIL, threadName);
  }

  static OutputTail start(InputStream in, int capacity, String threadName) {
    OutputTail tail = new OutputTail(in, capacity, threadName);
    tail.reader.start();
    return tail;
  }

  private void drain(InputStream in) {
    byte[] buffer = new byte[8192];
    try (in) {
      for (int n; (n = in.read(buffer)) >= 0; ) {
        append(buffer, n);
      }
    } catch (IOException e) {
      // the stream was closed under us: what was read is what there is
    }
  }

  private synchronized void append(byte[] b, int n) {
    int from = 0;
    if (n > ring.length) {
      from = n - ring.length;
      total += from;
    }
    for (int i = from; i < n; ) {
      int at = (int) (total % ring.length);
      int len = Math.min(n - i, ring.length - at);
      System.arraycopy(b, i, ring, at, len);
      i += len;
      total += len;
    }
  }

  /** Waits up to {@code timeout} for the end of the output; whether it came. */
  boolean awaitEnd(Duration timeout) throws InterruptedException {
    reader.join(Math.max(1, timeout.toMillis()));
    return !reader.isAlive();
  }

  /** What was kept so far. A cut in the middle of a UTF-8 sequence drops its remains. */
  synchronized Tail tail() {
    byte[] bytes;
    boolean truncated = total > ring.length;
    if (!truncated) {
      bytes = java.util.Arrays.copyOf(ring, (int) total);
    } else {
      bytes = new byte[ring.length];
      int at = (int) (total % ring.length);
      System.arraycopy(ring, at, bytes, 0, ring.length - at);
      System.arraycopy(ring, 0, bytes, ring.length - at, at);
    }
    int start = 0;
    while (truncated && start < Math.min(3, bytes.length) && (bytes[start] & 0xC0) == 0x80) {
      start++;
    }
    return new Tail(new String(bytes, start, bytes.length - start, StandardCharsets.UTF_8),
        truncated);
  }
}
