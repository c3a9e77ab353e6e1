package io.siterecovery.agent.api;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayInputStream;
import java.io.FilterInputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Flow;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** A body whose receiver stops reading fails on its own; a slow source is not a stall. */
class LargeChunkPublisherTest {
  private static final Duration STALL = Duration.ofMillis(200);

  /** Requests {@code wanted} chunks, then stops asking; completes with the outcome. */
  private static final class Receiver implements Flow.Subscriber<ByteBuffer> {
    final CompletableFuture<Throwable> outcome = new CompletableFuture<>();
    final AtomicLong bytes = new AtomicLong();
    private final long wanted;

    Receiver(long wanted) {
      this.wanted = wanted;
    }

    @Override
    public void onSubscribe(Flow.Subscription subscription) {
      subscription.request(wanted);
    }

    @Override
    public void onNext(ByteBuffer item) {
      bytes.addAndGet(item.remaining());
    }

    @Override
    public void onError(Throwable throwable) {
      outcome.complete(throwable);
    }

    @Override
    public void onComplete() {
      outcome.complete(null);
    }
  }

  @Test
  void aReceiverThatStopsAskingFailsTheBody() throws Exception {
    LargeChunkPublisher body = new LargeChunkPublisher(
        () -> new ByteArrayInputStream(new byte[4 << 20]), 1 << 20, STALL);
    Receiver receiver = new Receiver(1);
    body.subscribe(receiver);
    Throwable failure = receiver.outcome.get(10, TimeUnit.SECONDS);
    assertThat(failure).isInstanceOf(IOException.class).hasMessageContaining("read nothing");
    assertThat(receiver.bytes.get()).isEqualTo(1 << 20);
  }

  @Test
  void aSlowSourceWithAWillingReceiverIsNoStall() throws Exception {
    // each read of the source takes twice the stall timeout: a slow disk, not a hung peer
    LargeChunkPublisher body = new LargeChunkPublisher(() -> new FilterInputStream(
        new ByteArrayInputStream(new byte[3 << 20])) {
      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        try {
          Thread.sleep(2 * STALL.toMillis());
        } catch (InterruptedException e) {
          throw new IOException(e);
        }
        return super.read(b, off, len);
      }
    }, 1 << 20, STALL);
    Receiver receiver = new Receiver(Long.MAX_VALUE);
    body.subscribe(receiver);
    assertThat(receiver.outcome.get(30, TimeUnit.SECONDS)).isNull();
    assertThat(receiver.bytes.get()).isEqualTo(3 << 20);
  }
}
