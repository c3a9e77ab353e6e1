package io.siterecovery.agent.testing;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URI;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A TCP relay in front of an agent that counts the bytes crossing it: what an agent-to-agent
 * transfer really puts on the wire (HTTP framing included), measured outside the agent.
 */
public final class CountingProxy implements AutoCloseable {
  private final ServerSocket server;
  private final InetSocketAddress target;
  private final AtomicLong upstream = new AtomicLong();
  private final AtomicLong downstream = new AtomicLong();
  private final AtomicLong firstUp = new AtomicLong(Long.MAX_VALUE);
  private final AtomicLong lastUp = new AtomicLong(Long.MIN_VALUE);
  private final List<Socket> sockets = new CopyOnWriteArrayList<>();

  private CountingProxy(ServerSocket server, InetSocketAddress target) {
    this.server = server;
    this.target = target;
    Thread accept = new Thread(this::acceptLoop, "counting-proxy-accept");
    accept.setDaemon(true);
    accept.start();
  }

  /** Relays to the host and port of {@code targetUrl} (an https:// URL; TLS passes through). */
  public static CountingProxy to(String targetUrl) throws IOException {
    URI uri = URI.create(targetUrl);
    ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    return new CountingProxy(server, new InetSocketAddress(uri.getHost(), uri.getPort()));
  }

  public String url() {
    return "https://127.0.0.1:" + server.getLocalPort();
  }

  /** Bytes sent towards the target (request bodies and headers) since the last reset. */
  public long bytesUp() {
    return upstream.get();
  }

  public long bytesDown() {
    return downstream.get();
  }

  /** Seconds between the first and the last bytes relayed towards the target since the reset. */
  public double upSeconds() {
    return (lastUp.get() - firstUp.get()) / 1e9;
  }

  public void reset() {
    upstream.set(0);
    downstream.set(0);
    firstUp.set(Long.MAX_VALUE);
    lastUp.set(Long.MIN_VALUE);
  }

  private void acceptLoop() {
    while (!server.isClosed()) {
      try {
        Socket client = server.accept();
        Socket backend = new Socket(target.getAddress(), target.getPort());
        sockets.add(client);
        sockets.add(backend);
        pump(client, backend, upstream, true);
        pump(backend, client, downstream, false);
      } catch (IOException e) {
        return; // closed
      }
    }
  }

  private void pump(Socket from, Socket to, AtomicLong counter, boolean up) {
    Thread t = new Thread(() -> {
      byte[] buffer = new byte[64 << 10];
      try (InputStream in = from.getInputStream(); OutputStream out = to.getOutputStream()) {
        int n;
        while ((n = in.read(buffer)) >= 0) {
          out.write(buffer, 0, n);
          counter.addAndGet(n);
          if (up) {
            long now = System.nanoTime();
            firstUp.accumulateAndGet(now, Math::min);
            lastUp.accumulateAndGet(now, Math::max);
          }
        }
      } catch (IOException e) {
        // one side went away: close both
      } finally {
        closeQuietly(from);
        closeQuietly(to);
      }
    }, "counting-proxy-pump");
    t.setDaemon(true);
    t.start();
  }

  private static void closeQuietly(Socket s) {
    try {
      s.close();
    } catch (IOException ignored) {
      // already closed
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    sockets.forEach(CountingProxy::closeQuietly);
  }
}
