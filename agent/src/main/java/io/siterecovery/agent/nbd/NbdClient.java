package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.nbd.NbdProtocol.*;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/**
 * A small synchronous NBD client (fixed newstyle, OPT_GO, simple replies) for the demo and
 * tests that write through the same protocol path a VM would.
 */
public final class NbdClient implements Closeable {
  private final Socket socket;
  private final DataInputStream in;
  private final DataOutputStream out;
  private final long size;
  private long nextHandle = 1;

  public NbdClient(String host, int port, String exportName) throws IOException {
    socket = new Socket(host, port);
    socket.setTcpNoDelay(true);
    in = new DataInputStream(new BufferedInputStream(socket.getInputStream(), 1 << 16));
    out = new DataOutputStream(new BufferedOutputStream(socket.getOutputStream(), 1 << 16));
    try {
      if (in.readLong() != NBDMAGIC || in.readLong() != IHAVEOPT) {
        throw new IOException("not an NBD newstyle server");
      }
      int serverFlags = in.readUnsignedShort();
      if ((serverFlags & FLAG_FIXED_NEWSTYLE) == 0) {
        throw new IOException("server lacks fixed newstyle");
      }
      out.writeInt(CLIENT_FLAG_FIXED_NEWSTYLE | (serverFlags & FLAG_NO_ZEROES));
      byte[] name = exportName.getBytes(StandardCharsets.UTF_8);
      out.writeLong(IHAVEOPT);
      out.writeInt(OPT_GO);
      out.writeInt(4 + name.length + 2);
      out.writeInt(name.length);
      out.write(name);
      out.writeShort(0);
      out.flush();
      long exportSize = -1;
      while (true) {
        if (in.readLong() != OPTION_REPLY_MAGIC) {
          throw new IOException("bad option reply magic");
        }
        in.readInt();
        int type = in.readInt();
        byte[] data = in.readNBytes(in.readInt());
        if (type == REP_ACK) {
          break;
        }
        if (type < 0) {
          throw new IOException("export '" + exportName + "' refused: "
              + new String(data, StandardCharsets.UTF_8));
        }
        if (type == REP_INFO && data.length >= 10 && data[0] == 0 && data[1] == INFO_EXPORT) {
          exportSize = java.nio.ByteBuffer.wrap(data, 2, 8).getLong();
        }
      }
      this.size = exportSize;
    } catch (IOException e) {
      socket.close();
      throw e;
    }
  }

  public long size() {
    return size;
  }

  public void write(long offset, byte[] data, boolean fua) throws IOException {
    request(CMD_WRITE, fua ? CMD_FLAG_FUA : 0, offset, data.length);
    out.write(data);
    out.flush();
    reply();
  }

  public byte[] read(long offset, int length) throws IOException {
    request(CMD_READ, 0, offset, length);
    out.flush();
    reply();
    return in.readNBytes(length);
  }

  public void flush() throws IOException {
    request(CMD_FLUSH, 0, 0, 0);
    out.flush();
    reply();
  }

  private void request(int type, int flags, long offset, int length) throws IOException {
    out.writeInt(REQUEST_MAGIC);
    out.writeShort(flags);
    out.writeShort(type);
    out.writeLong(nextHandle++);
    out.writeLong(offset);
    out.writeInt(length);
  }

  private void reply() throws IOException {
    if (in.readInt() != SIMPLE_REPLY_MAGIC) {
      throw new IOException("bad reply magic");
    }
    int error = in.readInt();
    in.readLong();
    if (error != 0) {
      throw new IOException("NBD error " + error);
    }
  }

  @Override
  public void close() throws IOException {
    try {
      request(CMD_DISC, 0, 0, 0);
      out.flush();
    } catch (IOException ignored) {
      // the server may already have dropped us (VM powered off)
    } finally {
      socket.close();
    }
  }
}
