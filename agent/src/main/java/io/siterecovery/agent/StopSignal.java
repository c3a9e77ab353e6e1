package io.siterecovery.agent;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/**
 * A service's wait for SIGTERM or Ctrl-C, and its permission to finish closing afterwards.
 *
 * <p>The JVM halts as soon as its shutdown hooks return. A hook that only wakes the main thread
 * let the JVM halt while the main thread was still closing: an agent then never flushed its
 * disks nor wrote its clean-shutdown stamp ({@code OfflineChanges}), and its next start judged
 * the disks as after a crash. So the hook waits until {@link #close()} says everything is closed,
 * for at most {@code bound} (a wedged close must not keep the process from stopping).
 *
 * <p>Use it as the first resource of the main thread's try-with-resources, so that it is closed
 * last: {@code try (StopSignal stop = StopSignal.install("agent", BOUND); HostAgent a = ...) {
 * stop.await(); }}.
 */
public final class StopSignal implements AutoCloseable {
  /** Long enough for an agent to flush and close every disk and log. */
  public static final Duration DEFAULT_BOUND = Duration.ofSeconds(60);

  private final CountDownLatch requested = new CountDownLatch(1);
  private final CountDownLatch closed = new CountDownLatch(1);

  private StopSignal() {}

  public static StopSignal install(String name, Duration bound) {
    StopSignal signal = new StopSignal();
    Runtime.getRuntime().addShutdownHook(new Thread(() -> {
      signal.requested.countDown();
      try {
        if (!signal.closed.await(bound.toMillis(), TimeUnit.MILLISECONDS)) {
          System.err.println(name + ": not closed within " + bound + " of the stop; exiting");
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
    }, name + "-stop"));
    return signal;
  }

  /** Returns once the process is asked to stop. */
  public void await() throws InterruptedException {
    requested.await();
  }

  /** Everything is closed: the JVM may halt. */
  @Override
  public void close() {
    closed.countDown();
  }
}
