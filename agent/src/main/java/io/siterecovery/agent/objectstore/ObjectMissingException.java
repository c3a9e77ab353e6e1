package io.siterecovery.agent.objectstore;

/** An object a manifest needs is not in the bucket. */
public class ObjectMissingException extends SealedObjectException {
  public ObjectMissingException(String key) {
    super(key, "object missing");
  }
}
