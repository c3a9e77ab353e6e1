package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.nbd.NbdProtocol.*;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.Socket;
import java.net.SocketAddress;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Consumer;
import javax.net.ssl.SSLException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * One client: the handshake, then the transmission phase with simple replies. Whatever goes wrong
 * here ends this connection only.
 */
final class NbdConnection implements Runnable {
  private static final Logger log = LoggerFactory.getLogger(NbdConnection.class);

  /** What all connections of one server share. {@code tls} null: plain NBD. */
  record Shared(ExportResolver exports, NbdTls tls, PayloadBudget payloads,
      Duration handshakeTimeout, ScheduledExecutorService deadlines, NbdObserver observer) {}

  private final Socket socket;
  private final SocketAddress peer;
  private final Shared shared;
  private final Consumer<NbdConnection> onClose;
  private final long openedNanos = System.nanoTime();
  private volatile String exportName;
  private volatile boolean transmitting;
  private volatile boolean closedByServer;
  private DataInputStream in;
  private DataOutputStream out;

  NbdConnection(Socket socket, Shared shared, Consumer<NbdConnection> onClose) {
    this.socket = socket;
    this.peer = socket.getRemoteSocketAddress();
    this.shared = shared;
    this.onClose = onClose;
  }

  String exportName() {
    return exportName;
  }

  /** Still negotiating: no export chosen, nothing a client relies on yet. */
  boolean handshaking() {
    return !transmitting;
  }

  long openedNanos() {
    return openedNanos;
  }

  @Override
  public void run() {
    // The whole handshake, TLS included, has one deadline: a per-read timeout would let a client
    // that trickles a byte at a time hold its slot forever. Transmission has none, since an idle
    // VM is legitimate.
    ScheduledFuture<?> deadline = null;
    NbdHandshake handshake = null;
    try {
      deadline = shared.deadlines().schedule(this::handshakeExpired,
          shared.handshakeTimeout().toMillis(), TimeUnit.MILLISECONDS);
      handshake = new NbdHandshake(NbdWire.forHandshake(socket), shared.exports(), shared.tls(),
          () -> transmitting = true);
      Optional<NbdHandshake.Agreed> agreed = handshake.run();
      if (agreed.isPresent()) {
        deadline.cancel(false);
        exportName = agreed.get().exportName();
        NbdWire wire = agreed.get().wire().forTransmission();
        in = wire.in();
        out = wire.out();
        transmission(agreed.get().device());
      }
    } catch (EOFException e) {
      log.debug("NBD client {} went away", peer);
    } catch (NbdTls.ClientNotAllowedException e) {
      log.warn("NBD client {} refused: {}", peer, e.getMessage());
    } catch (SSLException e) {
      if (!closedByServer) {
        log.warn("NBD client {}: TLS failed: {}", peer, e.toString());
      }
    } catch (IOException e) {
      if (!closedByServer) {
        log.info("NBD connection {} from {} ended: {}", exportName, peer, e.toString());
      }
    } catch (Throwable t) {
      log.error("NBD connection {} from {} failed; closing it", exportName, peer, t);
    } finally {
      if (deadline != null) {
        deadline.cancel(false);
      }
      if (handshake != null) {
        // a TLS socket sends close_notify, which the protocol asks for after NBD_CMD_DISC
        closeQuietly(handshake.wire().socket());
      }
      closeQuietly(socket);
      onClose.accept(this);
    }
  }

  /** Drops the client at once, e.g. at VM power-off; safe from any thread. */
  void close() {
    closedByServer = true;
    closeQuietly(socket);
  }

  private void handshakeExpired() {
    if (!transmitting) {
      log.info("NBD client {} did not finish the handshake within {}; closing it", peer,
          shared.handshakeTimeout());
      close();
    }
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // closing is best effort; the peer sees the socket drop either way
    }
  }

  private void transmission(BlockDevice device) throws IOException {
    while (true) {
      if (in.readInt() != REQUEST_MAGIC) {
        throw new IOException("bad request magic");
      }
      NbdRequest request = new NbdRequest(in.readUnsignedShort(), in.readUnsignedShort(),
          in.readLong(), in.readLong(), Integer.toUnsignedLong(in.readInt()));
      if (request.type() == CMD_DISC) {
        out.flush();
        return;
      }
      int refusal = request.refusal(device.size(), device.readOnly());
      if (refusal != 0) {
        refuse(request, refusal);
      } else {
        perform(device, request);
      }
      // Replies are batched while the client has more requests in flight (iodepth > 1).
      if (in.available() == 0) {
        out.flush();
      }
    }
  }

  /** Answers with an error without touching the device; a write's payload is read past. */
  private void refuse(NbdRequest request, int error) throws IOException {
    log.info("NBD {}: refused {} with error {}", exportName, request, error);
    shared.observer().refused(NbdObserver.Op.of(request.type()));
    if (request.type() == CMD_WRITE) {
      in.skipNBytes(request.length());
    }
    simpleReply(request.handle(), error);
  }

  private void perform(BlockDevice device, NbdRequest request) throws IOException {
    long offset = request.offset();
    boolean fua = request.fua();
    if (request.length() == 0 && request.type() != CMD_FLUSH) {
      // The protocol leaves zero-length requests unspecified but asks us not to disconnect;
      // they change nothing, so the device and its change log never see them.
      simpleReply(request.handle(), 0);
      return;
    }
    NbdObserver.Op op = NbdObserver.Op.of(request.type());
    switch (request.type()) {
      case CMD_READ -> {
        int length = (int) request.length(); // checked: at most MAX_PAYLOAD
        try (PayloadBudget.Lease payload = shared.payloads().lease(length)) {
          ByteBuffer buffer = payload.buffer();
          int error = io(op, length, () -> device.read(offset, buffer));
          simpleReply(request.handle(), error);
          if (error == 0) {
            out.write(buffer.array(), 0, length);
          }
        }
      }
      case CMD_WRITE -> {
        int length = (int) request.length(); // checked: at most MAX_PAYLOAD
        try (PayloadBudget.Lease payload = shared.payloads().lease(length)) {
          in.readFully(payload.buffer().array(), 0, length);
          simpleReply(request.handle(),
              io(op, length, () -> device.write(offset, payload.buffer(), fua)));
        }
      }
      case CMD_FLUSH -> simpleReply(request.handle(), io(op, 0, device::flush));
      case CMD_TRIM -> simpleReply(request.handle(),
          io(op, request.length(), () -> device.trim(offset, request.length(), fua)));
      case CMD_WRITE_ZEROES -> simpleReply(request.handle(),
          io(op, request.length(), () -> device.writeZeroes(offset, request.length(), fua)));
      default -> throw new IllegalStateException("unchecked command " + request.type());
    }
  }

  private interface Io {
    void run() throws IOException;
  }

  /** Performs one device call, timed from after the payload arrived (the device's own time). */
  private int io(NbdObserver.Op op, long bytes, Io io) {
    long started = System.nanoTime();
    int error = errorOf(io);
    shared.observer().served(op, bytes, System.nanoTime() - started, error == 0);
    return error;
  }

  private int errorOf(Io io) {
    try {
      io.run();
      return 0;
    } catch (DeviceUnavailableException e) {
      return ESHUTDOWN;
    } catch (IllegalArgumentException e) {
      // The device's own range check caught what ours let through; it touched nothing.
      log.warn("NBD {}: the device refused a checked request: {}", exportName, e.getMessage());
      return EINVAL;
    } catch (IOException e) {
      log.warn("I/O error on {}: {}", exportName, e.toString());
      return EIO;
    }
  }

  private void simpleReply(long handle, int error) throws IOException {
    out.writeInt(SIMPLE_REPLY_MAGIC);
    out.writeInt(error);
    out.writeLong(handle);
  }
}
