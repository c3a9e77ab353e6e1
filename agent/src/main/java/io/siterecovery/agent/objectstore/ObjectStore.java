package io.siterecovery.agent.objectstore;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * A flat namespace of immutable objects (the store): put, get (whole or a byte range), list by
 * prefix, delete. Keys are relative to the store's own prefix. A missing object is an
 * {@link ObjectMissingException}; the store knows nothing of encryption or layout.
 */
public interface ObjectStore extends Closeable {

  void put(String key, byte[] bytes) throws IOException;

  /** Uploads a file, in parts when it is large, so no object is held in memory whole. */
  void put(String key, Path file) throws IOException;

  /**
   * The whole object, if it has at most {@code maxBytes}; a larger one is an
   * {@link ObjectCorruptException}, refused before it is read (a bucket's content is input).
   */
  byte[] get(String key, int maxBytes) throws IOException;

  /** Downloads an object into {@code target}, replacing it. */
  void get(String key, Path target) throws IOException;

  byte[] getRange(String key, long offset, int length) throws IOException;

  /** Every key that starts with {@code prefix}, in lexicographic order. */
  List<String> list(String prefix) throws IOException;

  void delete(String key) throws IOException;
}
