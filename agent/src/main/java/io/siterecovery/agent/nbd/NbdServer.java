package io.siterecovery.agent.nbd;

import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An NBD server: newstyle fixed handshake, optionally STARTTLS, one thread per client connection.
 * It listens on loopback unless TLS is configured, bounds the connections it keeps, the time a
 * handshake may take and the memory that request payloads hold, and survives anything a single
 * connection or a failed accept throws.
 */
public final class NbdServer implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(NbdServer.class);
  private static final AtomicInteger THREADS = new AtomicInteger();
  private static final Duration MAX_ACCEPT_BACKOFF = Duration.ofSeconds(1);

  /**
   * Resource bounds of one server.
   *
   * @param maxConnections connections held at once; more are closed as soon as they arrive
   * @param handshakeTimeout how long a client may take from connecting to choosing an export
   * @param payloadBudgetBytes READ and WRITE payload bytes held by all connections together;
   *     requests wait for room. At least one largest request (32 MiB), at most 2 GiB - 1.
   */
  public record Limits(int maxConnections, Duration handshakeTimeout, long payloadBudgetBytes) {
    public Limits {
      if (maxConnections < 1) {
        throw new IllegalArgumentException("maxConnections must be positive: " + maxConnections);
      }
      if (handshakeTimeout.isNegative() || handshakeTimeout.isZero()) {
        throw new IllegalArgumentException(
            "handshakeTimeout must be positive: " + handshakeTimeout);
      }
      if (payloadBudgetBytes < NbdProtocol.MAX_PAYLOAD || payloadBudgetBytes > Integer.MAX_VALUE) {
        throw new IllegalArgumentException("payloadBudgetBytes must hold one largest request ("
            + NbdProtocol.MAX_PAYLOAD + " bytes) and fit an int: " + payloadBudgetBytes);
      }
    }

    /** 256 connections, 10 s to finish the handshake, 64 MiB of payloads in flight. */
    public static Limits defaults() {
      return new Limits(256, Duration.ofSeconds(10), 64L << 20);
    }
  }

  private final ServerSocket serverSocket;
  private final Limits limits;
  private final NbdConnection.Shared shared;
  private final ScheduledExecutorService deadlines;
  private final Set<NbdConnection> connections = ConcurrentHashMap.newKeySet();
  private final OverCapLog overCap = new OverCapLog();
  private volatile boolean closed;

  /** Plain NBD with default limits; {@code bind} must be a loopback address. */
  public NbdServer(ExportResolver exports, InetSocketAddress bind) throws IOException {
    this(exports, bind, Limits.defaults(), null);
  }

  /**
   * @param tls null for plain NBD, which only a loopback {@code bind} allows: anyone who can reach
   *     a plain NBD port reads and writes the VMs' disks
   * @throws IllegalArgumentException for a non-loopback {@code bind} without TLS
   */
  public NbdServer(ExportResolver exports, InetSocketAddress bind, Limits limits, NbdTls tls)
      throws IOException {
    this(exports, bind, limits, tls, NbdObserver.NONE);
  }

  /** As above, telling {@code observer} about every request served or refused. */
  public NbdServer(ExportResolver exports, InetSocketAddress bind, Limits limits, NbdTls tls,
      NbdObserver observer) throws IOException {
    Objects.requireNonNull(observer, "observer");
    Objects.requireNonNull(exports, "exports");
    Objects.requireNonNull(limits, "limits");
    if (tls == null && (bind.getAddress() == null || !bind.getAddress().isLoopbackAddress())) {
      throw new IllegalArgumentException("NBD on " + bind.getHostString() + " needs TLS: clients "
          + "other than this host would read and write VM disks unauthenticated; configure "
          + "certificates or bind to 127.0.0.1");
    }
    this.limits = limits;
    this.serverSocket = new ServerSocket();
    try {
      serverSocket.setReuseAddress(true);
      // The default backlog of 50 drops the SYNs of a larger burst (many VMs reconnecting after
      // a restart), and each dropped client waits a second to retry.
      serverSocket.bind(bind, limits.maxConnections());
    } catch (IOException | RuntimeException e) {
      serverSocket.close();
      throw e;
    }
    ScheduledThreadPoolExecutor timer = new ScheduledThreadPoolExecutor(1, r -> {
      Thread t = new Thread(r, "nbd-handshake-deadlines");
      t.setDaemon(true);
      return t;
    });
    timer.setRemoveOnCancelPolicy(true); // most handshakes finish long before their deadline
    this.deadlines = timer;
    this.shared = new NbdConnection.Shared(exports, tls,
        new PayloadBudget((int) limits.payloadBudgetBytes()), limits.handshakeTimeout(), deadlines,
        observer);
    Thread acceptor = new Thread(this::acceptLoop, "nbd-accept-" + port());
    acceptor.setDaemon(true);
    acceptor.start();
    log.info("NBD server listening on {}{}", serverSocket.getLocalSocketAddress(),
        tls == null ? "" : " (STARTTLS required, client certificates checked)");
  }

  public int port() {
    return serverSocket.getLocalPort();
  }

  /** Connections held now, handshaking or transmitting. */
  int connectionCount() {
    return connections.size();
  }

  PayloadBudget payloads() {
    return shared.payloads();
  }

  /** Accepts until closed; no failure, not even an Error, ends it while the server is open. */
  private void acceptLoop() {
    int failuresInARow = 0;
    while (!closed) {
      try {
        admit(serverSocket.accept());
        failuresInARow = 0;
      } catch (Throwable t) {
        if (closed) {
          return;
        }
        failuresInARow++;
        log.warn("NBD accept failed ({} in a row)", failuresInARow, t);
        // Out of file descriptors (EMFILE) or threads fails again at once: do not spin on it.
        pause(backoff(failuresInARow));
      }
    }
  }

  private static Duration backoff(int failuresInARow) {
    Duration d = Duration.ofMillis(10L << Math.min(failuresInARow - 1, 10));
    return d.compareTo(MAX_ACCEPT_BACKOFF) > 0 ? MAX_ACCEPT_BACKOFF : d;
  }

  private static void pause(Duration d) {
    try {
      Thread.sleep(d.toMillis());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void admit(Socket socket) throws IOException {
    // Only this thread adds connections, so the count can only fall between check and add.
    if (connections.size() >= limits.maxConnections() && !evictOldestHandshake()) {
      socket.close();
      overCap.refused(socket, limits.maxConnections());
      return;
    }
    try {
      socket.setTcpNoDelay(true);
      NbdConnection connection = new NbdConnection(socket, shared, connections::remove);
      connections.add(connection);
      Thread t = new Thread(connection, "nbd-conn-" + THREADS.incrementAndGet());
      t.setDaemon(true);
      try {
        t.start();
      } catch (Throwable e) {
        connections.remove(connection);
        throw e;
      }
    } catch (Throwable e) {
      socket.close();
      throw e;
    }
  }

  /**
   * At the cap, a newcomer takes the place of the connection that has been negotiating longest.
   * A real client finishes its handshake in milliseconds, so whoever sits in it holds a slot it
   * does not use: without this, a flood of idle connections locks the VM's hypervisor out until
   * their handshake deadline. Connections that chose an export are never evicted.
   */
  private boolean evictOldestHandshake() {
    NbdConnection oldest = null;
    for (NbdConnection c : connections) {
      if (c.handshaking() && (oldest == null || c.openedNanos() < oldest.openedNanos())) {
        oldest = c;
      }
    }
    if (oldest == null) {
      return false;
    }
    connections.remove(oldest);
    oldest.close();
    overCap.evicted();
    return true;
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
    deadlines.shutdownNow();
  }

  /**
   * Logs connections refused over the cap, at most once per interval with a count, so that a flood
   * of connections does not become a flood of log lines.
   */
  private static final class OverCapLog {
    private static final long INTERVAL_NANOS = Duration.ofSeconds(10).toNanos();
    private long lastLogged = System.nanoTime() - INTERVAL_NANOS;
    private int unlogged;
    private int evicted;

    /** Called from the accept thread only. */
    void refused(Socket socket, int cap) {
      unlogged++;
      long now = System.nanoTime();
      if (now - lastLogged >= INTERVAL_NANOS) {
        log.warn("NBD connection from {} closed: {} connections is the cap ({} refused, {} "
            + "handshaking ones evicted since the last report)", socket.getRemoteSocketAddress(),
            cap, unlogged, evicted);
        lastLogged = now;
        unlogged = 0;
        evicted = 0;
      }
    }

    /** Called from the accept thread only. */
    void evicted() {
      evicted++;
      long now = System.nanoTime();
      if (now - lastLogged >= INTERVAL_NANOS) {
        log.warn("NBD at its connection cap: closed {} connections still in their handshake to"
            + " admit new ones ({} refused) since the last report", evicted, unlogged);
        lastLogged = now;
        unlogged = 0;
        evicted = 0;
      }
    }
  }
}
