package io.siterecovery.agent.server;

import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLEngine;
import org.eclipse.jetty.io.Connection;
import org.eclipse.jetty.io.ssl.SslConnection;
import org.eclipse.jetty.io.ssl.SslHandshakeListener;
import org.eclipse.jetty.util.component.AbstractLifeCycle;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Closes a connection whose TLS handshake has not finished in time. The idle timeout alone lets a
 * client that trickles a byte now and then hold a connection for ever without ever proving who
 * it is; this bounds the time anyone without a certificate can keep one open.
 */
final class HandshakeDeadline extends AbstractLifeCycle
    implements Connection.Listener, SslHandshakeListener {
  private static final Logger log = LoggerFactory.getLogger(HandshakeDeadline.class);

  private final Duration timeout;
  private final String site;
  private final Map<SSLEngine, ScheduledFuture<?>> pending = new ConcurrentHashMap<>();
  private final ScheduledExecutorService timer;

  HandshakeDeadline(Duration timeout, String site) {
    this.timeout = timeout;
    this.site = site;
    this.timer = Executors.newSingleThreadScheduledExecutor(r -> {
      Thread t = new Thread(r, "agent-handshake-deadline-" + site);
      t.setDaemon(true);
      return t;
    });
  }

  @Override
  public void onOpened(Connection connection) {
    if (connection instanceof SslConnection ssl) {
      SSLEngine engine = ssl.getSSLEngine();
      pending.put(engine, timer.schedule(() -> {
        if (pending.remove(engine) != null) {
          log.info("[{}] closed a connection from {}: no TLS handshake within {} s", site,
              ssl.getEndPoint().getRemoteSocketAddress(), timeout.toSeconds());
          ssl.getEndPoint().close();
        }
      }, timeout.toMillis(), TimeUnit.MILLISECONDS));
    }
  }

  @Override
  public void onClosed(Connection connection) {
    if (connection instanceof SslConnection ssl) {
      cancel(ssl.getSSLEngine());
    }
  }

  @Override
  public void handshakeSucceeded(Event event) {
    cancel(event.getSSLEngine());
  }

  @Override
  public void handshakeFailed(Event event, Throwable failure) {
    cancel(event.getSSLEngine());
    log.info("[{}] refused a TLS client: {}", site, failure.getMessage());
  }

  private void cancel(SSLEngine engine) {
    ScheduledFuture<?> deadline = pending.remove(engine);
    if (deadline != null) {
      deadline.cancel(false);
    }
  }

  @Override
  protected void doStop() {
    timer.shutdownNow();
    pending.clear();
  }
}
