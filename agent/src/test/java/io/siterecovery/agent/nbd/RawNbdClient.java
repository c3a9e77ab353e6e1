package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.Closeable;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * A client that speaks NBD byte by byte, so tests can send what well-behaved clients never do:
 * options out of order, requests past the end of a disk, unknown flags, oversized payloads.
 */
final class RawNbdClient implements Closeable {
  /** One option reply; a negative type is an error. */
  record OptionReply(int option, int type, byte[] data) {
    String message() {
      return new String(data, StandardCharsets.UTF_8);
    }
  }

  /** A simple reply; {@code data} only for a successful READ. */
  record Reply(int error, long handle, byte[] data) {}

  private final Socket plain;
  private Socket socket;
  private DataInputStream in;
  private DataOutputStream out;
  private long nextHandle = 1;
  private long exportSize = -1;
  private int transmissionFlags = -1;

  private RawNbdClient(Socket socket) throws IOException {
    this.plain = socket;
    use(socket);
  }

  /** Connects and reads the server's greeting; the client flags are not sent yet. */
  static RawNbdClient connect(int port) throws IOException {
    Socket socket = new Socket();
    socket.connect(new InetSocketAddress("127.0.0.1", port), 5000);
    socket.setSoTimeout(15_000);
    RawNbdClient client = new RawNbdClient(socket);
    assertThat(client.in.readLong()).isEqualTo(NBDMAGIC);
    assertThat(client.in.readLong()).isEqualTo(IHAVEOPT);
    assertThat(client.in.readUnsignedShort())
        .isEqualTo(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES);
    return client;
  }

  /** Connects, sends fixed newstyle client flags and enters transmission on {@code export}. */
  static RawNbdClient go(int port, String export) throws IOException {
    RawNbdClient client = connect(port);
    client.clientFlags(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
    client.go(export);
    return client;
  }

  private void use(Socket s) throws IOException {
    socket = s;
    in = new DataInputStream(new BufferedInputStream(s.getInputStream(), 1 << 16));
    out = new DataOutputStream(new BufferedOutputStream(s.getOutputStream(), 1 << 16));
  }

  void clientFlags(int flags) throws IOException {
    out.writeInt(flags);
    out.flush();
  }

  /** Sends an option without reading a reply; NBD_OPT_EXPORT_NAME has none. */
  void sendOption(int option, byte[] data) throws IOException {
    out.writeLong(IHAVEOPT);
    out.writeInt(option);
    out.writeInt(data.length);
    out.write(data);
    out.flush();
  }

  /** Sends one option and reads its replies up to the final one (ACK or an error). */
  List<OptionReply> option(int option, byte[] data) throws IOException {
    sendOption(option, data);
    List<OptionReply> replies = new ArrayList<>();
    while (true) {
      assertThat(in.readLong()).isEqualTo(OPTION_REPLY_MAGIC);
      int echoed = in.readInt();
      int type = in.readInt();
      byte[] body = in.readNBytes(in.readInt());
      replies.add(new OptionReply(echoed, type, body));
      if (type == REP_ACK || type < 0) {
        return replies;
      }
    }
  }

  /** The final reply to an option. */
  OptionReply last(int option, byte[] data) throws IOException {
    List<OptionReply> replies = option(option, data);
    return replies.get(replies.size() - 1);
  }

  /** NBD_OPT_STARTTLS; on ACK, the TLS handshake as a client of {@code context}. */
  OptionReply startTls(SSLContext context) throws IOException {
    OptionReply reply = last(OPT_STARTTLS, new byte[0]);
    if (reply.type() == REP_ACK) {
      SSLSocket tls = (SSLSocket) context.getSocketFactory()
          .createSocket(plain, "127.0.0.1", plain.getPort(), true);
      tls.setUseClientMode(true);
      tls.startHandshake();
      use(tls);
    }
    return reply;
  }

  /** NBD_OPT_GO with no information requests; fails the test unless the server agrees. */
  void go(String export) throws IOException {
    List<OptionReply> replies = option(OPT_GO, goData(export));
    OptionReply last = replies.get(replies.size() - 1);
    assertThat(last.type()).as("reply to GO: %s", last.message()).isEqualTo(REP_ACK);
    for (OptionReply r : replies) {
      ByteBuffer b = ByteBuffer.wrap(r.data());
      if (r.type() == REP_INFO && b.getShort() == INFO_EXPORT) {
        exportSize = b.getLong();
        transmissionFlags = b.getShort() & 0xffff;
      }
    }
  }

  static byte[] goData(String export) {
    byte[] name = export.getBytes(StandardCharsets.UTF_8);
    return ByteBuffer.allocate(4 + name.length + 2).putInt(name.length).put(name)
        .putShort((short) 0).array();
  }

  long exportSize() {
    return exportSize;
  }

  int transmissionFlags() {
    return transmissionFlags;
  }

  /** Sends a request header; {@code length} is sent as an unsigned 32-bit value. */
  long request(int flags, int type, long offset, long length) throws IOException {
    long handle = nextHandle++;
    out.writeInt(REQUEST_MAGIC);
    out.writeShort(flags);
    out.writeShort(type);
    out.writeLong(handle);
    out.writeLong(offset);
    out.writeInt((int) length);
    return handle;
  }

  /** Sends {@code count} bytes of {@code value} as payload, without holding them in memory. */
  void payload(long count, int value) throws IOException {
    byte[] chunk = new byte[1 << 16];
    java.util.Arrays.fill(chunk, (byte) value);
    for (long sent = 0; sent < count; ) {
      int n = (int) Math.min(chunk.length, count - sent);
      out.write(chunk, 0, n);
      sent += n;
    }
  }

  /** Flushes what was sent and reads one simple reply, with {@code dataLength} bytes on success. */
  Reply reply(int dataLength) throws IOException {
    out.flush();
    assertThat(in.readInt()).isEqualTo(SIMPLE_REPLY_MAGIC);
    int error = in.readInt();
    long handle = in.readLong();
    byte[] data = error == 0 ? in.readNBytes(dataLength) : null;
    return new Reply(error, handle, data);
  }

  Reply write(int flags, long offset, long length, int value) throws IOException {
    long handle = request(flags, CMD_WRITE, offset, length);
    payload(length, value);
    Reply reply = reply(0);
    assertThat(reply.handle()).isEqualTo(handle);
    return reply;
  }

  Reply read(int flags, long offset, int length) throws IOException {
    long handle = request(flags, CMD_READ, offset, length);
    Reply reply = reply(length);
    assertThat(reply.handle()).isEqualTo(handle);
    return reply;
  }

  Reply command(int flags, int type, long offset, long length) throws IOException {
    long handle = request(flags, type, offset, length);
    Reply reply = reply(0);
    assertThat(reply.handle()).isEqualTo(handle);
    return reply;
  }

  /** True if the server closes the connection before the read timeout. */
  boolean closedByServer() throws IOException {
    try {
      out.flush();
      while (true) {
        if (in.read() < 0) {
          return true;
        }
      }
    } catch (EOFException | SocketException e) {
      return true;
    } catch (java.net.SocketTimeoutException e) {
      return false;
    } catch (javax.net.ssl.SSLException e) {
      return true;
    }
  }

  @Override
  public void close() throws IOException {
    socket.close();
    plain.close();
  }
}
