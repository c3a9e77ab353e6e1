package io.siterecovery.agent.objectstore.ship;

import io.siterecovery.agent.objectstore.BucketReplica;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The chunks of one bounded step, a few at a time in a pool: the initial copy's uploads and a
 * resync's compares. Room for a chunk is taken before it is read and given back once it is
 * stored (or found to need nothing), so the chunks read and not yet done, which a step finishes
 * after its budget, stay bounded.
 */
final class ChunkPipeline {
  /** A chunk's work in the pool. */
  @FunctionalInterface
  interface ChunkTask {
    void run() throws IOException;
  }

  private final ExecutorService pool;
  private final Semaphore inFlight;
  private final List<Future<?>> pending = new ArrayList<>();
  /** Chunks stored, and their sealed bytes. */
  final AtomicLong sent = new AtomicLong();
  final AtomicLong bytes = new AtomicLong();

  ChunkPipeline(int threads, int inFlight) {
    this.pool = Executors.newFixedThreadPool(threads);
    this.inFlight = new Semaphore(inFlight);
  }

  /**
   * Waits for room for one more chunk; false, with no room taken, once the budget is spent
   * (checked after the wait, so a step never starts a chunk after its budget).
   */
  boolean reserve(long deadline) {
    inFlight.acquireUninterruptibly();
    if (System.nanoTime() >= deadline) {
      inFlight.release();
      return false;
    }
    return true;
  }

  /** Gives back the room {@link #reserve} took, for a chunk that needs no work in the pool. */
  void release() {
    inFlight.release();
  }

  /** Runs a reserved chunk's work in the pool; a failed one ends the step now, not after it. */
  void submit(ChunkTask task) throws IOException {
    pending.add(pool.submit(() -> {
      try {
        task.run();
      } finally {
        inFlight.release();
      }
      return null;
    }));
    while (!pending.isEmpty() && pending.get(0).isDone()) {
      BucketReplica.awaitUpload(pending.remove(0));
    }
  }

  void stored(long sealedBytes) {
    sent.incrementAndGet();
    bytes.addAndGet(sealedBytes);
  }

  void awaitAll() throws IOException {
    while (!pending.isEmpty()) {
      BucketReplica.awaitUpload(pending.remove(0));
    }
  }

  /** Stops at once: the uploads under way are interrupted (a step that failed). */
  void shutdownNow() {
    pool.shutdownNow();
  }

  /** Lets the work under way finish without interrupting it. */
  void finish() {
    pool.shutdown();
    try {
      pool.awaitTermination(10, TimeUnit.MINUTES);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }
}
