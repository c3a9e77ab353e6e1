package io.siterecovery.agent.undo;

import java.io.IOException;

/** An undo file whose bytes do not match their checksums, or that is incomplete. */
public class UndoCorruptException extends IOException {
  public UndoCorruptException(String message) {
    super(message);
  }
}
