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

  private static int transmissionFlags(BlockDevice d) {
    int flags = TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_FUA | TFLAG_SEND_TRIM
        | TFLAG_SEND_WRITE_ZEROES | TFLAG_CAN_MULTI_CONN;
    return d.readOnly() ? flags | TFLAG_READ_ONLY : flags;
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
      int magic = in.readInt();
      if (magic != REQUEST_MAGIC) {
        throw new IOException("bad request magic");
      }
      int flags = in.readUnsignedShort();
      int type = in.readUnsignedShort();
      long handle = in.readLong();
      long offset = in.readLong();
      long length = Integer.toUnsignedLong(in.readInt());
      boolean fua = (flags & CMD_FLAG_FUA) != 0;
      boolean inRange = offset >= 0 && offset + length <= device.size();
      switch (type) {
        case CMD_READ -> {
          if (!inRange || length > MAX_PAYLOAD) {
            simpleReply(handle, EINVAL);
            break;
          }
          ByteBuffer target = ensure(buffer, (int) length);
          buffer = target;
          target.clear().limit((int) length);
          int error = perform(() -> device.read(offset, target));
          simpleReply(handle, error);
          if (error == 0) {
            out.write(target.array(), 0, (int) length);
          }
        }
        case CMD_WRITE -> {
          if (length > MAX_PAYLOAD) {
            throw new IOException("write payload too large: " + length);
          }
          buffer = ensure(buffer, (int) length);
          in.readFully(buffer.array(), 0, (int) length);
          ByteBuffer payload = ByteBuffer.wrap(buffer.array(), 0, (int) length);
          simpleReply(handle, !inRange ? ENOSPC : perform(() -> device.write(offset, payload, fua)));
        }
        case CMD_FLUSH -> simpleReply(handle, perform(device::flush));
        case CMD_TRIM -> simpleReply(handle, !inRange ? EINVAL
            : perform(() -> device.trim(offset, length, fua)));
        case CMD_WRITE_ZEROES -> simpleReply(handle, !inRange ? ENOSPC
            : perform(() -> device.writeZeroes(offset, length, fua)));
        case CMD_DISC -> {
          out.flush();
          return;
        }
        default -> simpleReply(handle, EINVAL);
      }
      // Replies are batched while the client has more requests in flight (iodepth > 1).
      if (in.available() == 0) {
        out.flush();
      }
    }
  }

  private static ByteBuffer ensure(ByteBuffer buffer, int length) {
    return buffer.capacity() >= length ? buffer : ByteBuffer.allocate(length);
  }

  private interface Io {
    void run() throws IOException;
  }

  private int perform(Io io) {
    try {
      io.run();
      return 0;
    } catch (DeviceUnavailableException e) {
      return ESHUTDOWN;
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
