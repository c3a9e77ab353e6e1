package io.siterecovery.agent.nbd;

import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** An NBD server: newstyle fixed handshake, one thread per client connection. */
public final class NbdServer implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(NbdServer.class);
  private static final AtomicInteger THREADS = new AtomicInteger();

  private final ExportResolver exports;
  private final ServerSocket serverSocket;
  private final Set<NbdConnection> connections = ConcurrentHashMap.newKeySet();
  private final Thread acceptor;
  private volatile boolean closed;

  public NbdServer(ExportResolver exports, InetSocketAddress bind) throws IOException {
    this.exports = exports;
    this.serverSocket = new ServerSocket();
    serverSocket.setReuseAddress(true);
    serverSocket.bind(bind);
    this.acceptor = new Thread(this::acceptLoop, "nbd-accept-" + port());
    acceptor.setDaemon(true);
    acceptor.start();
    log.info("NBD server listening on {}", serverSocket.getLocalSocketAddress());
  }

  public int port() {
    return serverSocket.getLocalPort();
  }

  private void acceptLoop() {
    while (!closed) {
      try {
        Socket socket = serverSocket.accept();
        socket.setTcpNoDelay(true);
        NbdConnection connection = new NbdConnection(socket, exports, connections::remove);
        connections.add(connection);
        Thread t = new Thread(connection, "nbd-conn-" + THREADS.incrementAndGet());
        t.setDaemon(true);
        t.start();
      } catch (SocketException e) {
        if (!closed) {
          log.warn("NBD accept failed", e);
        }
      } catch (IOException e) {
        log.warn("NBD accept failed", e);
      }
    }
  }

  /** Drops every client connected to an export the predicate selects (VM power-off). */
  public void disconnect(Predicate<String> exportName) {
    for (NbdConnection c : connections) {
      if (c.exportName() != null && exportName.test(c.exportName())) {
        c.close();
      }
    }
  }

  @Override
  public void close() throws IOException {
    closed = true;
    serverSocket.close();
    connections.forEach(NbdConnection::close);
  }
}
