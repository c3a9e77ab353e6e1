package io.siterecovery.agent;

/**
 * Error codes on the agent API. {@code recoverable} follows the seeds' retry table: recoverable
 * errors are retried with back-off, the others need an operator.
 */
public enum ErrorCode {
  BAD_REQUEST(400, false),
  /** No endpoint answers this method and path (an older or newer peer, or a typo). */
  NO_SUCH_ENDPOINT(404, false),
  /**
   * A TLS handshake refused a certificate (ours or the peer's: another CA, expired, the wrong
   * site). A configuration problem that retrying does not fix.
   */
  NOT_AUTHENTICATED(401, false),
  /** The caller's identity may not do this (a peer calling an operator endpoint, say). */
  FORBIDDEN(403, false),
  /** A request body over its bound. */
  TOO_LARGE(413, false),
  VM_NOT_FOUND(404, false),
  /** No runnable plan script of that name in the agent's scripts directory. */
  NO_SUCH_SCRIPT(404, false),
  VM_EXISTS(409, false),
  INVALID_STATE(409, false),
  /** A resync is under way: delta cycles wait for it (retried with back-off meanwhile). */
  RESYNC_IN_PROGRESS(409, true),
  /**
   * A test VM reads the replica's earlier contents, so the replica may not be rewritten outside
   * log apply (a resync, a roll-back) until the test is cleaned up; retried meanwhile.
   */
  TEST_VM_ACTIVE(409, true),
  /**
   * A VM recovered from a bucket is committed only once every chunk is local; its background
   * fetch is still under way (retried with back-off meanwhile).
   */
  NOT_LOCAL_YET(409, true),
  LOG_CORRUPT(422, false),
  TRANSFER_CORRUPT(422, true),
  PEER_UNREACHABLE(502, true),
  /**
   * The agent's data directory is full (ENOSPC): what the request wrote was discarded or undone,
   * and it is retried, so it succeeds once space is freed. The message names the site and the
   * free space.
   */
  INSUFFICIENT_STORAGE(507, true),
  IO_ERROR(500, true);

  private final int httpStatus;
  private final boolean recoverable;

  ErrorCode(int httpStatus, boolean recoverable) {
    this.httpStatus = httpStatus;
    this.recoverable = recoverable;
  }

  public int httpStatus() {
    return httpStatus;
  }

  public boolean recoverable() {
    return recoverable;
  }
}
