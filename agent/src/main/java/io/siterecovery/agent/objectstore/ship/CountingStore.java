package io.siterecovery.agent.objectstore.ship;

import io.siterecovery.agent.objectstore.ForwardingStore;
import io.siterecovery.agent.objectstore.ObjectStore;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;

/** An {@link ObjectStore} that counts the bytes it downloads: what a resync read back. */
final class CountingStore extends ForwardingStore {
  private final AtomicLong downloaded = new AtomicLong();

  CountingStore(ObjectStore delegate) {
    super(delegate);
  }

  long downloaded() {
    return downloaded.get();
  }

  @Override
  public byte[] get(String key, int maxBytes) throws IOException {
    byte[] bytes = super.get(key, maxBytes);
    downloaded.addAndGet(bytes.length);
    return bytes;
  }

  @Override
  public void get(String key, Path target) throws IOException {
    super.get(key, target);
    downloaded.addAndGet(Files.size(target));
  }

  @Override
  public byte[] getRange(String key, long offset, int length) throws IOException {
    byte[] bytes = super.getRange(key, offset, length);
    downloaded.addAndGet(bytes.length);
    return bytes;
  }
}
