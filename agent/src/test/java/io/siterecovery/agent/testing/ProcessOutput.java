package io.siterecovery.agent.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.Predicate;

/**
 * Collects what a child process prints, on a daemon thread so that its pipe never fills, and lets a
 * test wait, with a deadline, until the output says something (no sleeping).
 */
public final class ProcessOutput {
  private final StringBuilder text = new StringBuilder();
  private final ReentrantLock lock = new ReentrantLock();
  private final Condition changed = lock.newCondition();
  private boolean ended;

  private ProcessOutput() {}

  /** Starts draining the process's stdout (which should carry stderr too). */
  public static ProcessOutput drain(Process process) {
    return drain(process.getInputStream(), "drain-" + process.pid());
  }

  public static ProcessOutput drain(InputStream in, String threadName) {
    ProcessOutput output = new ProcessOutput();
    Thread t = new Thread(() -> output.pump(in), threadName);
    t.setDaemon(true);
    t.start();
    return output;
  }

  private void pump(InputStream in) {
    char[] buffer = new char[8192];
    try (Reader reader = new InputStreamReader(in, StandardCharsets.UTF_8)) {
      int n;
      while ((n = reader.read(buffer)) >= 0) {
        lock.lock();
        try {
          text.append(buffer, 0, n);
          changed.signalAll();
        } finally {
          lock.unlock();
        }
      }
    } catch (IOException e) {
      // the process went away; what was read so far stays available
    } finally {
      lock.lock();
      try {
        ended = true;
        changed.signalAll();
      } finally {
        lock.unlock();
      }
    }
  }

  public String text() {
    lock.lock();
    try {
      return text.toString();
    } finally {
      lock.unlock();
    }
  }

  /** Waits until the output satisfies the condition; fails with the output at the deadline. */
  public String await(Predicate<String> condition, Duration timeout, String what) {
    long deadline = System.nanoTime() + timeout.toNanos();
    lock.lock();
    try {
      while (true) {
        String now = text.toString();
        if (condition.test(now)) {
          return now;
        }
        long left = deadline - System.nanoTime();
        if (ended || left <= 0) {
          throw new AssertionError((ended ? "output ended" : "timed out after " + timeout)
              + " before " + what + "\n--- output ---\n" + now);
        }
        changed.awaitNanos(left);
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new AssertionError("interrupted waiting for " + what, e);
    } finally {
      lock.unlock();
    }
  }

  /** Waits until the text occurs {@code count} times in the output. */
  public String awaitOccurrences(String needle, int count, Duration timeout) {
    return await(s -> occurrences(s, needle) >= count, timeout,
        count + " x '" + needle + "'");
  }

  /** Waits for the end of the stream (the process has exited or closed its output). */
  public String awaitEnd(Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    lock.lock();
    try {
      while (!ended) {
        long left = deadline - System.nanoTime();
        if (left <= 0) {
          break;
        }
        changed.await(left, TimeUnit.NANOSECONDS);
      }
      return text.toString();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return text.toString();
    } finally {
      lock.unlock();
    }
  }

  public static int occurrences(String haystack, String needle) {
    int count = 0;
    for (int i = haystack.indexOf(needle); i >= 0; i = haystack.indexOf(needle, i + 1)) {
      count++;
    }
    return count;
  }
}
