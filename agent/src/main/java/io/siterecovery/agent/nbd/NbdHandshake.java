package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.nbd.NbdProtocol.*;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.util.Optional;
import javax.net.ssl.SSLSocket;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Option haggling of the fixed newstyle handshake. With TLS configured the server runs in the
 * protocol's FORCEDTLS mode: until STARTTLS has succeeded, every option but STARTTLS and ABORT is
 * answered NBD_REP_ERR_TLS_REQD, and EXPORT_NAME, which cannot be answered with an error, ends
 * the session.
 */
final class NbdHandshake {
  private static final Logger log = LoggerFactory.getLogger(NbdHandshake.class);
  private static final int KNOWN_CLIENT_FLAGS = CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES;
  /** Export names are at most 4096 bytes; no option we understand carries much more. */
  private static final int MAX_OPTION_LENGTH = 1 << 16;

  /** What haggling agreed on: the export and the wire that transmission continues on. */
  record Agreed(BlockDevice device, String exportName, NbdWire wire) {}

  private final ExportResolver exports;
  private final NbdTls tls;
  private final Runnable exportChosen;
  private NbdWire wire;
  private boolean tlsActive;
  private boolean noZeroes;

  /**
   * {@code tls} null: plain NBD. {@code exportChosen} runs just before the reply that ends the
   * handshake is sent: once a client can have that reply, its connection is in transmission and
   * must never count as a handshake any more (one the server would evict at its cap).
   */
  NbdHandshake(NbdWire wire, ExportResolver exports, NbdTls tls, Runnable exportChosen) {
    this.wire = wire;
    this.exports = exports;
    this.tls = tls;
    this.exportChosen = exportChosen;
  }

  /** The wire in use, a TLS one after STARTTLS. */
  NbdWire wire() {
    return wire;
  }

  /**
   * Runs the handshake to its end. Empty when the client aborted, chose an export that is not
   * there or that it may not use without TLS, or spoke a protocol we do not.
   */
  Optional<Agreed> run() throws IOException {
    wire.out().writeLong(NBDMAGIC);
    wire.out().writeLong(IHAVEOPT);
    wire.out().writeShort(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    wire.out().flush();
    int clientFlags = wire.in().readInt();
    if ((clientFlags & ~KNOWN_CLIENT_FLAGS) != 0) {
      log.info("NBD client {} sent unknown flags 0x{}; closing", peer(),
          Integer.toHexString(clientFlags));
      return Optional.empty();
    }
    if ((clientFlags & CLIENT_FLAG_FIXED_NEWSTYLE) == 0) {
      log.info("NBD client {} without fixed newstyle support refused", peer());
      return Optional.empty();
    }
    noZeroes = (clientFlags & CLIENT_FLAG_NO_ZEROES) != 0;
    while (true) {
      if (wire.in().readLong() != IHAVEOPT) {
        throw new IOException("bad option magic");
      }
      int option = wire.in().readInt();
      int length = wire.in().readInt();
      if (length < 0 || length > MAX_OPTION_LENGTH) {
        throw new IOException("option too long: " + Integer.toUnsignedString(length));
      }
      byte[] data = wire.in().readNBytes(length);
      if (data.length < length) {
        throw new EOFException();
      }
      if (tls != null && !tlsActive && option != OPT_STARTTLS && option != OPT_ABORT) {
        if (option == OPT_EXPORT_NAME) {
          log.info("NBD client {} asked for an export before starting TLS; closing", peer());
          return Optional.empty();
        }
        reply(option, REP_ERR_TLS_REQD, "TLS is required: send NBD_OPT_STARTTLS first");
        continue;
      }
      switch (option) {
        case OPT_EXPORT_NAME -> {
          return exportName(new String(data, StandardCharsets.UTF_8));
        }
        case OPT_ABORT -> {
          reply(option, REP_ACK, "");
          return Optional.empty();
        }
        case OPT_STARTTLS -> startTls(data);
        case OPT_LIST -> list(data);
        case OPT_INFO, OPT_GO -> {
          Optional<Agreed> agreed = infoOrGo(option, ByteBuffer.wrap(data));
          if (agreed.isPresent()) {
            return agreed;
          }
        }
        default -> reply(option, REP_ERR_UNSUP, "");
      }
    }
  }

  /** NBD_OPT_EXPORT_NAME: there is no error reply to it, so an unknown export ends the session. */
  private Optional<Agreed> exportName(String name) throws IOException {
    Optional<BlockDevice> device = exports.openExport(name);
    if (device.isEmpty()) {
      log.info("NBD client {} asked for unknown export {}; closing", peer(), name);
      return Optional.empty();
    }
    exportChosen.run();
    wire.out().writeLong(device.get().size());
    wire.out().writeShort(transmissionFlags(device.get()));
    if (!noZeroes) {
      wire.out().write(new byte[124]);
    }
    wire.out().flush();
    return Optional.of(new Agreed(device.get(), name, wire));
  }

  private void startTls(byte[] data) throws IOException {
    if (tls == null) {
      reply(OPT_STARTTLS, REP_ERR_POLICY, "TLS is not configured on this server");
    } else if (tlsActive) {
      reply(OPT_STARTTLS, REP_ERR_INVALID, "TLS is already active");
    } else if (data.length != 0) {
      reply(OPT_STARTTLS, REP_ERR_INVALID, "NBD_OPT_STARTTLS carries no data");
    } else {
      reply(OPT_STARTTLS, REP_ACK, "");
      // From the ACK on, everything travels inside TLS; a failed TLS handshake ends the session.
      SSLSocket socket = tls.accept(wire.socket());
      wire = NbdWire.forHandshake(socket);
      tlsActive = true;
      log.info("NBD client {} started {} as {}", peer(), socket.getSession().getProtocol(),
          ((X509Certificate) socket.getSession().getPeerCertificates()[0])
              .getSubjectX500Principal().getName());
    }
  }

  private void list(byte[] data) throws IOException {
    if (data.length != 0) {
      reply(OPT_LIST, REP_ERR_INVALID, "NBD_OPT_LIST carries no data");
      return;
    }
    for (String name : exports.exportNames()) {
      byte[] n = name.getBytes(StandardCharsets.UTF_8);
      reply(OPT_LIST, REP_SERVER,
          ByteBuffer.allocate(4 + n.length).putInt(n.length).put(n).array());
    }
    reply(OPT_LIST, REP_ACK, "");
  }

  /** NBD_OPT_INFO and NBD_OPT_GO: name length, name, count of info requests, the requests. */
  private Optional<Agreed> infoOrGo(int option, ByteBuffer body) throws IOException {
    if (body.remaining() < 6) {
      reply(option, REP_ERR_INVALID, "option too short");
      return Optional.empty();
    }
    int nameLength = body.getInt();
    if (nameLength < 0 || nameLength > body.remaining() - 2) {
      reply(option, REP_ERR_INVALID, "export name longer than the option");
      return Optional.empty();
    }
    byte[] n = new byte[nameLength];
    body.get(n);
    int infoRequests = Short.toUnsignedInt(body.getShort());
    if (body.remaining() != 2 * infoRequests) {
      reply(option, REP_ERR_INVALID, "option length does not match its information requests");
      return Optional.empty();
    }
    String name = new String(n, StandardCharsets.UTF_8);
    Optional<BlockDevice> device = exports.openExport(name);
    if (device.isEmpty()) {
      reply(option, REP_ERR_UNKNOWN, "no such export: " + name);
      return Optional.empty();
    }
    BlockDevice d = device.get();
    reply(option, REP_INFO, ByteBuffer.allocate(12).putShort((short) INFO_EXPORT)
        .putLong(d.size()).putShort((short) transmissionFlags(d)).array());
    reply(option, REP_INFO, ByteBuffer.allocate(14).putShort((short) INFO_BLOCK_SIZE)
        .putInt(1).putInt(4096).putInt(MAX_PAYLOAD).array());
    if (option == OPT_GO) {
      exportChosen.run();
    }
    reply(option, REP_ACK, "");
    return option == OPT_GO ? Optional.of(new Agreed(d, name, wire)) : Optional.empty();
  }

  /** Read-only exports advertise no write features, so clients do not send them. */
  static int transmissionFlags(BlockDevice d) {
    int flags = TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_CAN_MULTI_CONN;
    return d.readOnly() ? flags | TFLAG_READ_ONLY
        : flags | TFLAG_SEND_FUA | TFLAG_SEND_TRIM | TFLAG_SEND_WRITE_ZEROES;
  }

  private Object peer() {
    return wire.socket().getRemoteSocketAddress();
  }

  private void reply(int option, int type, String message) throws IOException {
    reply(option, type, message.getBytes(StandardCharsets.UTF_8));
  }

  private void reply(int option, int type, byte[] data) throws IOException {
    wire.out().writeLong(OPTION_REPLY_MAGIC);
    wire.out().writeInt(option);
    wire.out().writeInt(type);
    wire.out().writeInt(data.length);
    wire.out().write(data);
    wire.out().flush();
  }
}
