package io.siterecovery.agent.objectstore.recover;

import java.io.IOException;

/**
 * A chunk of a disk being recovered from a bucket could not be made local: its object (or a log
 * applied to it) is missing, damaged or not this chunk's. The NBD client sees EIO for the
 * ranges of that chunk; nothing of it is served or written locally.
 */
public class ChunkUnavailableException extends IOException {
  public ChunkUnavailableException(String disk, long chunk, String object, Throwable cause) {
    super(disk + ": chunk " + chunk + " is unavailable (" + object + "): " + cause, cause);
  }
}
