package io.siterecovery.agent.objectstore.ship;

import io.siterecovery.agent.objectstore.ObjectStore;
import io.siterecovery.agent.transport.Transport.TokenBucket;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * An {@link ObjectStore} whose uploads, together, keep to a rate: each put takes its bytes from
 * one token bucket before it goes, so parallel uploads share the cap. Reads and lists are not
 * paced (a cycle reads one manifest). The delegate belongs to the caller.
 */
final class PacedStore implements ObjectStore {
  private final ObjectStore delegate;
  private final TokenBucket bucket;

  PacedStore(ObjectStore delegate, TokenBucket bucket) {
    this.delegate = delegate;
    this.bucket = bucket;
  }

  @Override
  public void put(String key, byte[] bytes) throws IOException {
    bucket.acquire(bytes.length);
    delegate.put(key, bytes);
  }

  @Override
  public void put(String key, Path file) throws IOException {
    bucket.acquire(Files.size(file));
    delegate.put(key, file);
  }

  @Override
  public byte[] get(String key, int maxBytes) throws IOException {
    return delegate.get(key, maxBytes);
  }

  @Override
  public void get(String key, Path target) throws IOException {
    delegate.get(key, target);
  }

  @Override
  public byte[] getRange(String key, long offset, int length) throws IOException {
    return delegate.getRange(key, offset, length);
  }

  @Override
  public List<String> list(String prefix) throws IOException {
    return delegate.list(prefix);
  }

  @Override
  public void delete(String key) throws IOException {
    delegate.delete(key);
  }

  @Override
  public void close() {
    // the delegate is the agent's, open for every call
  }
}
