package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.nbd.NbdProtocol.*;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** One client: the option haggling phase, then the transmission phase with simple replies. */
final class NbdConnection implements Runnable {
  private static final Logger log = LoggerFactory.getLogger(NbdConnection.class);

  private final Socket socket;
  private final ExportResolver exports;
  private final Consumer<NbdConnection> onClose;
  private volatile String exportName;
  private DataInputStream in;
  private DataOutputStream out;
  private boolean noZeroes;

  NbdConnection(Socket socket, ExportResolver exports, Consumer<NbdConnection> onClose) {
    this.socket = socket;
    this.exports = exports;
    this.onClose = onClose;
  }

  String exportName() {
    return exportName;
  }

  @Override
  public void run() {
    try {
      in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 17));
      out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 17));
      BlockDevice device = handshake();
      if (device != null) {
        transmission(device);
      }
    } catch (EOFException e) {
      log.debug("NBD client went away");
    } catch (IOException e) {
      if (!socket.isClosed()) {
        log.info("NBD connection {} ended: {}", exportName, e.toString());
      }
    } finally {
      close();
      onClose.accept(this);
    }
  }

  void close() {
    try {
      socket.close();
    } catch (IOException ignored) {
      // closing is best effort; the peer sees the socket drop either way
    }
  }

  private BlockDevice handshake() throws IOException {
    out.writeLong(NBDMAGIC);
    out.writeLong(IHAVEOPT);
    out.writeShort(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    out.flush();
    int clientFlags = in.readInt();
    if ((clientFlags & CLIENT_FLAG_FIXED_NEWSTYLE) == 0) {
      log.info("NBD client without fixed newstyle support refused");
      return null;
    }
    noZeroes = (clientFlags & CLIENT_FLAG_NO_ZEROES) != 0;
    while (true) {
      long magic = in.readLong();
      if (magic != IHAVEOPT) {
        throw new IOException("bad option magic");
      }
      int option = in.readInt();
      int length = in.readInt();
      if (length < 0 || length > 1 << 16) {
        throw new IOException("option too long: " + length);
      }
      byte[] data = in.readNBytes(length);
      if (data.length < length) {
        throw new EOFException();
      }
      ByteBuffer body = ByteBuffer.wrap(data);
      switch (option) {
        case OPT_EXPORT_NAME -> {
          String name = new String(data, StandardCharsets.UTF_8);
          Optional<BlockDevice> device = exports.openExport(name);
          if (device.isEmpty()) {
            return null; // the protocol has no error reply for EXPORT_NAME: close
          }
          exportName = name;
          out.writeLong(device.get().size());
          out.writeShort(transmissionFlags(device.get()));
          if (!noZeroes) {
            out.write(new byte[124]);
          }
          out.flush();
          return device.get();
        }
        case OPT_ABORT -> {
          reply(option, REP_ACK, new byte[0]);
          return null;
        }
        case OPT_LIST -> {
          if (length != 0) {
            reply(option, REP_ERR_INVALID, new byte[0]);
            continue;
          }
          for (String name : exports.exportNames()) {
            byte[] n = name.getBytes(StandardCharsets.UTF_8);
            reply(option, REP_SERVER, ByteBuffer.allocate(4 + n.length).putInt(n.length).put(n).array());
          }
          reply(option, REP_ACK, new byte[0]);
        }
        case OPT_INFO, OPT_GO -> {
          BlockDevice device = infoOrGo(option, body);
          if (device != null && option == OPT_GO) {
            return device;
          }
        }
        default -> reply(option, REP_ERR_UNSUP, new byte[0]);
      }
    }
  }

  private BlockDevice infoOrGo(int option, ByteBuffer body) throws IOException {
    if (body.remaining() < 6) {
      reply(option, REP_ERR_INVALID, new byte[0]);
      return null;
    }
    int nameLength = body.getInt();
    if (nameLength < 0 || nameLength + 2 > body.remaining()) {
      reply(option, REP_ERR_INVALID, new byte[0]);
      return null;
    }
    byte[] n = new byte[nameLength];
    body.get(n);
    String name = new String(n, StandardCharsets.UTF_8);
    Optional<BlockDevice> device = exports.openExport(name);
    if (device.isEmpty()) {
      byte[] msg = ("no such export: " + name).getBytes(StandardCharsets.UTF_8);
      reply(option, REP_ERR_UNKNOWN, msg);
      return null;
    }
    BlockDevice d = device.get();
    reply(option, REP_INFO, ByteBuffer.allocate(12).putShort((short) INFO_EXPORT)
        .putLong(d.size()).putShort((short) transmissionFlags(d)).array());
    reply(option, REP_INFO, ByteBuffer.allocate(14).putShort((short) INFO_BLOCK_SIZE)
        .putInt(1).putInt(4096).putInt(MAX_PAYLOAD).array());
    reply(option, REP_ACK, new byte[0]);
    if (option == OPT_GO) {
      exportName = name;
    }
    return d;
  }

  /** Read-only exports advertise no write features, so clients do not send them. */
  private static int transmissionFlags(BlockDevice d) {
    int flags = TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_CAN_MULTI_CONN;
    return d.readOnly() ? flags | TFLAG_READ_ONLY
        : flags | TFLAG_SEND_FUA | TFLAG_SEND_TRIM | TFLAG_SEND_WRITE_ZEROES;
  }

  private void reply(int option, int type, byte[] data) throws IOException {
    out.writeLong(OPTION_REPLY_MAGIC);
    out.writeInt(option);
    out.writeInt(type);
    out.writeInt(data.length);
    out.write(data);
    out.flush();
  }

  private void transmission(BlockDevice device) throws IOException {
    ByteBuffer buffer = ByteBuffer.allocate(1 << 20);
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
        buffer = perform(device, request, buffer);
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
    if (request.type() == CMD_WRITE) {
      in.skipNBytes(request.length());
    }
    simpleReply(request.handle(), error);
  }

  /** Performs a checked request; returns the buffer to reuse, grown if this request needed it. */
  private ByteBuffer perform(BlockDevice device, NbdRequest request, ByteBuffer buffer)
      throws IOException {
    long offset = request.offset();
    boolean fua = request.fua();
    if (request.length() == 0 && request.type() != CMD_FLUSH) {
      // The protocol leaves zero-length requests unspecified but asks us not to disconnect;
      // they change nothing, so the device and its change log never see them.
      simpleReply(request.handle(), 0);
      return buffer;
    }
    switch (request.type()) {
      case CMD_READ -> {
        int length = (int) request.length(); // checked: at most MAX_PAYLOAD
        ByteBuffer target = ensure(buffer, length);
        target.clear().limit(length);
        int error = io(() -> device.read(offset, target));
        simpleReply(request.handle(), error);
        if (error == 0) {
          out.write(target.array(), 0, length);
        }
        return target;
      }
      case CMD_WRITE -> {
        int length = (int) request.length(); // checked: at most MAX_PAYLOAD
        ByteBuffer target = ensure(buffer, length);
        in.readFully(target.array(), 0, length);
        ByteBuffer payload = ByteBuffer.wrap(target.array(), 0, length);
        simpleReply(request.handle(), io(() -> device.write(offset, payload, fua)));
        return target;
      }
      case CMD_FLUSH -> simpleReply(request.handle(), io(device::flush));
      case CMD_TRIM -> simpleReply(request.handle(),
          io(() -> device.trim(offset, request.length(), fua)));
      case CMD_WRITE_ZEROES -> simpleReply(request.handle(),
          io(() -> device.writeZeroes(offset, request.length(), fua)));
      default -> throw new IllegalStateException("unchecked command " + request.type());
    }
    return buffer;
  }

  private static ByteBuffer ensure(ByteBuffer buffer, int length) {
    return buffer.capacity() >= length ? buffer : ByteBuffer.allocate(length);
  }

  private interface Io {
    void run() throws IOException;
  }

  private int io(Io io) {
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
