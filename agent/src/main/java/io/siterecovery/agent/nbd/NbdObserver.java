package io.siterecovery.agent.nbd;

/**
 * What the NBD server tells about the requests it serves, for metrics. The server sits below the
 * agent's metrics wiring, so it reports through this seam rather than knowing a registry. Called
 * on the connection's thread for every request: implementations must be cheap and never throw.
 */
public interface NbdObserver {
  /** The request types a client may send, as they are counted. */
  enum Op {
    READ, WRITE, FLUSH, TRIM, WRITE_ZEROES, OTHER;

    static Op of(int type) {
      return switch (type) {
        case NbdProtocol.CMD_READ -> READ;
        case NbdProtocol.CMD_WRITE -> WRITE;
        case NbdProtocol.CMD_FLUSH -> FLUSH;
        case NbdProtocol.CMD_TRIM -> TRIM;
        case NbdProtocol.CMD_WRITE_ZEROES -> WRITE_ZEROES;
        default -> OTHER;
      };
    }
  }

  /**
   * A request the device performed: {@code bytes} it covered, {@code nanos} the device took
   * (without the client's own network time), {@code ok} false when it answered with an error.
   */
  void served(Op op, long bytes, long nanos, boolean ok);

  /** A request refused before the device saw it (bad range, flags, a read-only export). */
  void refused(Op op);

  /** For a server nobody watches (tests of the protocol alone). */
  NbdObserver NONE = new NbdObserver() {
    @Override
    public void served(Op op, long bytes, long nanos, boolean ok) {}

    @Override
    public void refused(Op op) {}
  };
}
