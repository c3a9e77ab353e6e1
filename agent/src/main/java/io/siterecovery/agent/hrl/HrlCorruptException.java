package io.siterecovery.agent.hrl;

import java.io.IOException;

/** A log whose bytes do not match their checksums; it must never be applied. */
public class HrlCorruptException extends IOException {
  public HrlCorruptException(String message) {
    super(message);
  }
}
