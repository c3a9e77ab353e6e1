package io.siterecovery.agent.api;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.http.HttpRequest;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.Executors;
import java.util.concurrent.Flow;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * A request body read from a stream in large chunks. The JDK's {@code ofInputStream} reads 16 KiB
 * at a time, so a bulk copy became tens of thousands of HTTP chunks per GiB, each decoded again on
 * the other side; 1 MiB chunks cut that overhead to a few per MiB.
 *
 * <p>A receiver that stops reading (a hung peer, a network that black-holes packets) would leave
 * the sender waiting for demand until the request's deadline, holding the VM's lock. So a body
 * that has made no progress for {@link #STALL_TIMEOUT} fails the request instead.
 */
final class LargeChunkPublisher implements HttpRequest.BodyPublisher {
  static final Duration STALL_TIMEOUT = Duration.ofSeconds(60);
  private static final ScheduledExecutorService WATCHDOG =
      Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "agent-client-stall-watchdog");
        t.setDaemon(true);
        return t;
      });

  private final Supplier<InputStream> source;
  private final int chunkSize;
  private final Duration stallTimeout;

  LargeChunkPublisher(Supplier<InputStream> source, int chunkSize) {
    this(source, chunkSize, STALL_TIMEOUT);
  }

  LargeChunkPublisher(Supplier<InputStream> source, int chunkSize, Duration stallTimeout) {
    this.source = source;
    this.chunkSize = chunkSize;
    this.stallTimeout = stallTimeout;
  }

  @Override
  public long contentLength() {
    return -1;
  }

  @Override
  public void subscribe(Flow.Subscriber<? super ByteBuffer> subscriber) {
    Chunks chunks = new Chunks(source.get(), subscriber);
    long period = Math.max(10, stallTimeout.toMillis() / 4);
    chunks.watchdog = WATCHDOG.scheduleWithFixedDelay(chunks::failIfStalled, period, period,
        TimeUnit.MILLISECONDS);
    subscriber.onSubscribe(chunks);
  }

  /** Reads only on demand; re-entrant requests from onNext are folded into the running loop. */
  private final class Chunks implements Flow.Subscription {
    private final InputStream in;
    private final Flow.Subscriber<? super ByteBuffer> subscriber;
    private final AtomicLong demand = new AtomicLong();
    private final AtomicBoolean draining = new AtomicBoolean();
    private volatile boolean finished;
    private volatile long lastProgress = System.nanoTime();
    private volatile ScheduledFuture<?> watchdog;

    Chunks(InputStream in, Flow.Subscriber<? super ByteBuffer> subscriber) {
      this.in = in;
      this.subscriber = subscriber;
    }

    @Override
    public void request(long n) {
      if (n <= 0) {
        finish();
        subscriber.onError(new IllegalArgumentException("non-positive request " + n));
        return;
      }
      demand.getAndAccumulate(n, (a, b) -> a + b < 0 ? Long.MAX_VALUE : a + b);
      lastProgress = System.nanoTime();
      drain();
    }

    private void drain() {
      while (!finished && demand.get() > 0 && draining.compareAndSet(false, true)) {
        try {
          while (!finished && demand.get() > 0) {
            byte[] chunk = new byte[chunkSize];
            int n = in.readNBytes(chunk, 0, chunkSize);
            if (n == 0) {
              finish();
              subscriber.onComplete();
              return;
            }
            demand.decrementAndGet();
            subscriber.onNext(ByteBuffer.wrap(chunk, 0, n));
            lastProgress = System.nanoTime();
          }
        } catch (IOException | UncheckedIOException e) {
          finish();
          subscriber.onError(e);
          return;
        } finally {
          draining.set(false);
        }
      }
    }

    /**
     * Fails the body when the receiver has asked for nothing for too long. Only while no chunk is
     * being read: a slow source disk is not a stalled peer, and signals must not overlap.
     */
    private void failIfStalled() {
      if (finished) {
        return;
      }
      long idle = System.nanoTime() - lastProgress;
      if (idle > stallTimeout.toNanos() && draining.compareAndSet(false, true)) {
        try {
          if (!finished) {
            finish();
            subscriber.onError(new IOException("the receiving agent read nothing of this body for "
                + stallTimeout.toSeconds() + " s"));
          }
        } finally {
          draining.set(false);
        }
      }
    }

    @Override
    public void cancel() {
      finish();
    }

    private void finish() {
      finished = true;
      ScheduledFuture<?> w = watchdog;
      if (w != null) {
        w.cancel(false);
      }
      try {
        in.close();
      } catch (IOException ignored) {
        // the body is abandoned either way
      }
    }
  }
}
