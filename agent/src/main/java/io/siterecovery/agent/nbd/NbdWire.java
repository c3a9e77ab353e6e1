package io.siterecovery.agent.nbd;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;

/** A connection's socket, plain or TLS, and the buffered streams the protocol is read through. */
record NbdWire(Socket socket, DataInputStream in, DataOutputStream out) {
  /** Enough for option haggling, so that connections that never finish it cost little memory. */
  private static final int HANDSHAKE_BUFFER = 4 << 10;
  /** Batches request headers and replies; payloads at least this large bypass the buffer. */
  private static final int TRANSMISSION_BUFFER = 64 << 10;

  static NbdWire forHandshake(Socket socket) throws IOException {
    return new NbdWire(socket,
        new DataInputStream(new BufferedInputStream(socket.getInputStream(), HANDSHAKE_BUFFER)),
        new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), HANDSHAKE_BUFFER)));
  }

  /**
   * Larger buffers for the transmission phase, layered over the handshake's streams so that a
   * request the client sent right behind its last option, already buffered, is not lost.
   */
  NbdWire forTransmission() {
    return new NbdWire(socket,
        new DataInputStream(new BufferedInputStream(in, TRANSMISSION_BUFFER)),
        new DataOutputStream(new BufferedOutputStream(out, TRANSMISSION_BUFFER)));
  }
}
