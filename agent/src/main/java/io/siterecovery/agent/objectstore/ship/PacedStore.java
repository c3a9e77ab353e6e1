package io.siterecovery.agent.objectstore.ship;

import io.siterecovery.agent.objectstore.ForwardingStore;
import io.siterecovery.agent.objectstore.ObjectStore;
import io.siterecovery.agent.transport.Transport.TokenBucket;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * An {@link ObjectStore} whose uploads, together, keep to a rate: each put takes its bytes from
 * one token bucket before it goes, so parallel uploads share the cap. Reads and lists are not
 * paced (a cycle reads one manifest).
 */
final class PacedStore extends ForwardingStore {
  private final TokenBucket bucket;

  PacedStore(ObjectStore delegate, TokenBucket bucket) {
    super(delegate);
    this.bucket = bucket;
  }

  @Override
  public void put(String key, byte[] bytes) throws IOException {
    bucket.acquire(bytes.length);
    super.put(key, bytes);
  }

  @Override
  public void put(String key, Path file) throws IOException {
    bucket.acquire(Files.size(file));
    super.put(key, file);
  }
}
