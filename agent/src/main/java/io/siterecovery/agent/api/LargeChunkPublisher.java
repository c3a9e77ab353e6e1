package io.siterecovery.agent.api;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.http.HttpRequest;
import java.nio.ByteBuffer;
import java.util.concurrent.Flow;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Supplier;

/**
 * A request body read from a stream in large chunks. The JDK's {@code ofInputStream} reads 16 KiB
 * at a time, so a bulk copy became tens of thousands of HTTP chunks per GiB, each decoded again on
 * the other side; 1 MiB chunks cut that overhead to a few per MiB.
 */
final class LargeChunkPublisher implements HttpRequest.BodyPublisher {
  private final Supplier<InputStream> source;
  private final int chunkSize;

  LargeChunkPublisher(Supplier<InputStream> source, int chunkSize) {
    this.source = source;
    this.chunkSize = chunkSize;
  }

  @Override
  public long contentLength() {
    return -1;
  }

  @Override
  public void subscribe(Flow.Subscriber<? super ByteBuffer> subscriber) {
    subscriber.onSubscribe(new Chunks(source.get(), subscriber));
  }

  /** Reads only on demand; re-entrant requests from onNext are folded into the running loop. */
  private final class Chunks implements Flow.Subscription {
    private final InputStream in;
    private final Flow.Subscriber<? super ByteBuffer> subscriber;
    private final AtomicLong demand = new AtomicLong();
    private final AtomicBoolean draining = new AtomicBoolean();
    private volatile boolean finished;

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

    @Override
    public void cancel() {
      finish();
    }

    private void finish() {
      finished = true;
      try {
        in.close();
      } catch (IOException ignored) {
        // the body is abandoned either way
      }
    }
  }
}
