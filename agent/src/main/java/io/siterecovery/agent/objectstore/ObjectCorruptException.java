package io.siterecovery.agent.objectstore;

/** An object whose bytes fail authentication: flipped, truncated, extended or not ours. */
public class ObjectCorruptException extends SealedObjectException {
  public ObjectCorruptException(String key, String message) {
    super(key, "corrupt object: " + message);
  }
}
