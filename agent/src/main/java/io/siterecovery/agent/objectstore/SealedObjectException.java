package io.siterecovery.agent.objectstore;

import java.io.IOException;

/** An object that must not be used, named by its key: the replica refuses rather than guess. */
public abstract class SealedObjectException extends IOException {
  private final String key;

  protected SealedObjectException(String key, String message) {
    super(key + ": " + message);
    this.key = key;
  }

  public String key() {
    return key;
  }
}
