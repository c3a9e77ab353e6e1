package io.siterecovery.agent.objectstore;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * An {@link ObjectStore} that passes every call on, for a store that changes a few of them (the
 * shipper's paced uploads; tests that break some calls). The delegate belongs to the caller.
 */
public class ForwardingStore implements ObjectStore {
  private final ObjectStore delegate;

  public ForwardingStore(ObjectStore delegate) {
    this.delegate = delegate;
  }

  @Override
  public void put(String key, byte[] bytes) throws IOException {
    delegate.put(key, bytes);
  }

  @Override
  public void put(String key, Path file) throws IOException {
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
    // the delegate belongs to the caller
  }
}
