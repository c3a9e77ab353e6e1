package io.siterecovery.agent.objectstore;

/**
 * An authentic object under the wrong name: another VM's, another disk's or another point's
 * object copied or swapped in, or one sealed under another key-encryption key.
 */
public class ObjectMismatchException extends SealedObjectException {
  public ObjectMismatchException(String key, String message) {
    super(key, "object mismatch: " + message);
  }
}
