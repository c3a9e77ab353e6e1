package io.siterecovery.agent.server;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.ssl.SslConnection;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Closes a connection that takes too long to send a request: from the moment it opens, or its
 * previous request was answered, it has {@code timeout} to deliver complete headers. Every byte
 * resets the idle timeout, and Jetty's minimum data rate covers bodies only, so without this a
 * client trickling one header byte a second would hold a connection (and, with enough of them,
 * the API) for as long as it liked. A request being handled is never cut: long steps answer
 * only when done.
 */
final class RequestDeadline extends AbstractLifeCycle implements Connection.Listener {
  private static final Logger log = LoggerFactory.getLogger(RequestDeadline.class);

  /** Requests in flight on a connection, and when it last started waiting for one. */
  private static final class Waiting {
    int inFlight;
    long since = System.nanoTime();
  }

  private final Duration timeout;
  private final String site;
  private final Map<Connection, Waiting> connections = new ConcurrentHashMap<>();
  private final ScheduledExecutorService timer;

  RequestDeadline(Duration timeout, String site) {
    this.timeout = timeout;
    this.site = site;
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "agent-request-deadline-" + site);
      t.setDaemon(true);
      return t;
    });
    long period = Math.max(100, timeout.toMillis() / 4);
    timer.scheduleWithFixedDelay(this::closeLate, period, period, TimeUnit.MILLISECONDS);
  }

  @Override
  public void onOpened(Connection connection) {
    // The TLS layer has a deadline of its own; this one is for the HTTP connection above it.
    if (!(connection instanceof SslConnection)) {
      connections.put(connection, new Waiting());
    }
  }

  @Override
  public void onClosed(Connection connection) {
    connections.remove(connection);
  }

  void started(Request request) {
    Waiting w = waiting(request);
    if (w != null) {
      synchronized (w) {
        w.inFlight++;
      }
    }
  }

  void ended(Request request) {
    Waiting w = waiting(request);
    if (w != null) {
      synchronized (w) {
        w.inFlight--;
        w.since = System.nanoTime();
      }
    }
  }

  private Waiting waiting(Request request) {
    return connections.get(request.getConnectionMetaData().getConnection());
  }

  private void closeLate() {
    long now = System.nanoTime();
    connections.forEach((connection, w) -> {
      boolean late;
      synchronized (w) {
        late = w.inFlight == 0 && now - w.since > timeout.toNanos();
      }
      if (late) {
        connections.remove(connection);
        log.info("[{}] closed a connection from {}: no complete request within {} s", site,
            connection.getEndPoint().getRemoteSocketAddress(), timeout.toSeconds());
        connection.getEndPoint().close();
      }
    });
  }

  @Override
  protected void doStop() {
    timer.shutdownNow();
    connections.clear();
  }
}
