package io.siterecovery.agent.objectstore;

import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import org.jclouds.blobstore.BlobStore;
import org.jclouds.blobstore.domain.Blob;
import org.jclouds.blobstore.options.GetOptions;
import org.jclouds.blobstore.util.ForwardingBlobStore;

/**
 * s3proxy's backend with a gate on the reads of some keys: each such GET is counted, then waits
 * for a permit, so a test decides how many get through (and which were served) while a client
 * in another process fetches. Every other request passes untouched.
 */
final class GatedBlobStore extends ForwardingBlobStore {
  private final Predicate<String> gated;
  private final Semaphore permits = new Semaphore(Integer.MAX_VALUE / 2);
  private final Map<String, AtomicInteger> requests = new ConcurrentHashMap<>();
  private final Set<String> served = ConcurrentHashMap.newKeySet();

  GatedBlobStore(BlobStore backend, Predicate<String> gated) {
    super(backend);
    this.gated = gated;
  }

  /** From now on, only {@code count} more gated reads pass; the rest wait for {@link #open}. */
  void allow(int count) {
    permits.drainPermits();
    permits.release(count);
  }

  void open() {
    permits.release(Integer.MAX_VALUE / 2);
  }

  /** How many GETs of {@code key} arrived, served or waiting. */
  int requests(String key) {
    AtomicInteger n = requests.get(key);
    return n == null ? 0 : n.get();
  }

  /** The gated keys whose GET got past the gate and was answered. */
  Set<String> served() {
    return Set.copyOf(served);
  }

  @Override
  public Blob getBlob(String container, String name) {
    return getBlob(container, name, GetOptions.NONE);
  }

  @Override
  public Blob getBlob(String container, String name, GetOptions options) {
    if (!gated.test(name)) {
      return super.getBlob(container, name, options);
    }
    requests.computeIfAbsent(name, k -> new AtomicInteger()).incrementAndGet();
    try {
      permits.acquire();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("s3proxy stopped while a read of " + name + " waited", e);
    }
    Blob blob = super.getBlob(container, name, options);
    served.add(name);
    return blob;
  }
}
