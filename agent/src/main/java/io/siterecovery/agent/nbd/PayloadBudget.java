package io.siterecovery.agent.nbd;

import java.io.InterruptedIOException;
import java.nio.ByteBuffer;
import java.util.concurrent.Semaphore;

/**
 * The bytes that all connections of one server may hold in request payloads at once. A request
 * waits for its share (back-pressure) instead of each connection keeping a large buffer of its
 * own, so memory follows the requests in flight, not the number of connections.
 */
final class PayloadBudget {
  private final Semaphore bytes;

  PayloadBudget(int capacity) {
    // fair, so that a large request is not starved by a stream of small ones
    this.bytes = new Semaphore(capacity, true);
  }

  /** A buffer of {@code length} bytes, waiting until the budget has room for it. */
  Lease lease(int length) throws InterruptedIOException {
    try {
      bytes.acquire(length);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted waiting for " + length + " payload bytes");
    }
    try {
      return new Lease(ByteBuffer.allocate(length), bytes);
    } catch (OutOfMemoryError e) {
      bytes.release(length);
      throw e;
    }
  }

  int available() {
    return bytes.availablePermits();
  }

  /** A payload buffer; closing it returns its bytes to the budget. Close exactly once. */
  record Lease(ByteBuffer buffer, Semaphore from) implements AutoCloseable {
    @Override
    public void close() {
      from.release(buffer.capacity());
    }
  }
}
