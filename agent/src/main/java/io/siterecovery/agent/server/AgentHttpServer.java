package io.siterecovery.agent.server;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages.ErrorBody;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import io.siterecovery.agent.vm.VmHost;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicLong;
import javax.net.ssl.SSLSession;
import org.eclipse.jetty.http.HttpHeader;
import org.eclipse.jetty.io.EndPoint;
import org.eclipse.jetty.server.Handler;
import org.eclipse.jetty.server.HttpConfiguration;
import org.eclipse.jetty.server.HttpConnectionFactory;
import org.eclipse.jetty.server.NetworkConnectionLimit;
import org.eclipse.jetty.server.Request;
import org.eclipse.jetty.server.Response;
import org.eclipse.jetty.server.SecureRequestCustomizer;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.SslConnectionFactory;
import org.eclipse.jetty.util.Callback;
import org.eclipse.jetty.util.ssl.SslContextFactory;
import org.eclipse.jetty.util.thread.QueuedThreadPool;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's HTTPS API (JSON, plus binary bodies for copies and logs) on Jetty: TLS 1.3 only,
 * a client certificate from the deployment CA required at the handshake, and every request
 * authorized by the identity in that certificate ({@link Access}). Bounded everywhere: threads,
 * connections, handshake and idle time, header and body sizes. A failure answers with a code and
 * a message meant for the caller; internals (exception strings, stack traces) go to the log only.
 */
public final class AgentHttpServer implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(AgentHttpServer.class);
  private static final String IDENTITY_KEY = "site-recovery.identity";
  /** A refused body is read to its end up to this much: a copy slice and its framing. */
  static final long DRAIN_LIMIT = 320L << 20;

  /** The server's bounds; {@link #defaults()} suits one agent per host. */
  public record Limits(int maxThreads, int maxConnections, Duration handshakeTimeout,
      Duration idleTimeout, Duration requestTimeout, int maxJsonBytes, int maxHeaderBytes) {
    public static Limits defaults() {
      return new Limits(64, 1024, Duration.ofSeconds(10), Duration.ofSeconds(60),
          Duration.ofSeconds(60), 1 << 20, 16 << 10);
    }
  }

  private final VmHost host;
  private final AgentRoutes routes;
  private final Limits limits;
  private final Server server;
  private final ServerConnector connector;
  private final AtomicLong errorRefs = new AtomicLong();
  private final RequestDeadline requestDeadline;

  public AgentHttpServer(VmHost host, AgentRoles roles, InetSocketAddress bind,
      TlsCredentials credentials, Limits limits) throws IOException {
    this.host = host;
    this.limits = limits;
    this.routes = new AgentRoutes(host, roles);
    QueuedThreadPool threads = new QueuedThreadPool(limits.maxThreads(),
        Math.min(4, limits.maxThreads()), 60_000);
    threads.setName("agent-http-" + host.site());
    threads.setDaemon(true);
    this.server = new Server(threads);

    SslContextFactory.Server tls = new SslContextFactory.Server();
    tls.setSslContext(credentials.serverContext());
    tls.setNeedClientAuth(true);
    tls.setIncludeProtocols(TlsCredentials.PROTOCOL);
    tls.setIncludeCipherSuites(TlsCredentials.CIPHER_SUITES);
    tls.setUseCipherSuitesOrder(true);
    tls.setEndpointIdentificationAlgorithm(null); // clients are trusted for their identity
    HttpConfiguration http = new HttpConfiguration();
    http.setSendServerVersion(false);
    http.setSendDateHeader(false);
    http.setRequestHeaderSize(limits.maxHeaderBytes());
    SecureRequestCustomizer secure = new SecureRequestCustomizer(false, false, -1, false);
    http.addCustomizer(secure);
    this.connector = new ServerConnector(server, 1, 1,
        new SslConnectionFactory(tls, "http/1.1"), new HttpConnectionFactory(http));
    connector.setHost(bind.getHostString());
    connector.setPort(bind.getPort());
    connector.setIdleTimeout(limits.idleTimeout().toMillis());
    connector.setReuseAddress(true);
    connector.setAcceptedTcpNoDelay(true);
    connector.addBean(new HandshakeDeadline(limits.handshakeTimeout(), host.site()));
    this.requestDeadline = new RequestDeadline(limits.requestTimeout(), host.site());
    connector.addBean(requestDeadline);
    server.addBean(new NetworkConnectionLimit(limits.maxConnections(), connector));
    server.addConnector(connector);
    server.setHandler(new Handler.Abstract() {
      @Override
      public boolean handle(Request request, Response response, Callback callback) {
        dispatch(request, response, callback);
        return true;
      }
    });
    try {
      server.start();
    } catch (IOException e) {
      stopQuietly();
      throw e;
    } catch (Exception e) {
      stopQuietly();
      throw new IOException("cannot start the agent API on " + bind + ": " + e.getMessage(), e);
    }
    log.info("[{}] agent API on https://{}:{} (TLS 1.3, client certificates required)",
        host.site(), bind.getHostString(), port());
  }

  public int port() {
    return connector.getLocalPort();
  }

  private void dispatch(Request request, Response response, Callback callback) {
    requestDeadline.started(request);
    try {
      answer(request, response, callback);
    } finally {
      requestDeadline.ended(request);
    }
  }

  private void answer(Request request, Response response, Callback callback) {
    String method = request.getMethod();
    String path = request.getHttpURI().getPath();
    Identity caller = null;
    int status;
    Object body;
    try {
      caller = callerOf(request).orElseThrow(() -> Access.forbidden(
          "the client certificate names no site-recovery identity"));
      Optional<AgentRoutes.Match> match = routes.match(method, path);
      if (match.isEmpty()) {
        throw new AgentException(ErrorCode.NO_SUCH_ENDPOINT, "no endpoint " + method + " " + path);
      }
      AgentRoutes.authorize(match.get(), caller);
      // Long steps (a slice copy, a resync step) answer only when done: an idle connection
      // while the handler works is not a dead client. Reads and writes still time out.
      request.addIdleTimeoutListener(timeout -> false);
      body = match.get().route().handler().handle(match.get().path(),
          new Call(request, caller, limits.maxJsonBytes()));
      status = 200;
    } catch (AgentException e) {
      status = e.code().httpStatus();
      body = new ErrorBody(e.code().name(), e.getMessage());
      if (e.code() == ErrorCode.FORBIDDEN) {
        log.warn("[{}] refused {} {} from {} ({}): {}", host.site(), method, path, caller,
            Request.getRemoteAddr(request), e.getMessage());
      } else if (e.code().recoverable()) {
        log.warn("[{}] {} {} failed: {}", host.site(), method, path, e.getMessage());
      } else {
        log.info("[{}] {} {} refused: {}", host.site(), method, path, e.getMessage());
      }
    } catch (IOException | RuntimeException | OutOfMemoryError e) {
      // An OutOfMemoryError here is this request's (bodies are bounded, so it is rare): what it
      // held is released when it returns, and the caller gets an answer instead of Jetty's page.
      if (isDiskFull(e)) {
        AgentException full = diskFull(path);
        log.warn("[{}] {} {} failed: {} ({})", host.site(), method, path, full.getMessage(),
            e.toString());
        status = full.code().httpStatus();
        body = new ErrorBody(full.code().name(), full.getMessage());
      } else {
        long ref = errorRefs.incrementAndGet();
        log.error("[{}] {} {} failed (error ref {})", host.site(), method, path, ref, e);
        status = 500;
        body = new ErrorBody(ErrorCode.IO_ERROR.name(), "the agent of site " + host.site()
            + " failed on this request; its log has the details under error ref " + ref);
      }
    }
    if (status != 200 && status != ErrorCode.TOO_LARGE.httpStatus()) {
      drainBody(request);
    }
    respond(response, callback, status, body);
  }

  /**
   * Whether {@code e} is, or was caused by, a full file system (ENOSPC). Java reports it only as
   * an IOException whose message (or a FileSystemException's reason) is the C library's text.
   */
  static boolean isDiskFull(Throwable e) {
    for (Throwable t = e; t != null; t = t.getCause()) {
      String reason = t instanceof java.nio.file.FileSystemException fs ? fs.getReason()
          : t.getMessage();
      if (t instanceof IOException && reason != null
          && reason.contains("No space left on device")) {
        return true;
      }
    }
    return false;
  }

  /** The answer to a request that filled the data directory, naming the site and what is free. */
  private AgentException diskFull(String path) {
    java.nio.file.Path dir = host.dataDir();
    String free;
    try {
      free = java.nio.file.Files.getFileStore(dir).getUsableSpace() + " bytes free";
    } catch (IOException unknown) {
      free = "free space unknown: " + unknown.getMessage();
    }
    return new AgentException(ErrorCode.INSUFFICIENT_STORAGE, (path.startsWith("/v1/replicas/")
        ? "replica site " : "site ") + host.site() + " is out of disk space (" + free + " in "
        + dir + ")");
  }

  /**
   * Reads what is left of a refused request's body before answering. java.net.http, which every
   * agent client uses, reads no answer until it has sent its whole body: if the server answered
   * and closed early, a source would see a broken connection (recoverable, retried for ever)
   * instead of, say, "no such replica". Bounded: past {@link #DRAIN_LIMIT} the connection is
   * closed and the answer may be lost; the idle timeout stops a sender that stalls.
   */
  private void drainBody(Request request) {
    if (request.getLength() == 0) {
      return;
    }
    try (InputStream rest = Request.asInputStream(request)) {
      byte[] sink = new byte[64 << 10];
      long drained = 0;
      for (int n; drained <= DRAIN_LIMIT && (n = rest.read(sink)) >= 0; ) {
        drained += n;
      }
    } catch (IOException | RuntimeException e) {
      log.debug("[{}] body of a refused request not drained: {}", host.site(), e.toString());
    }
  }

  private static void respond(Response response, Callback callback, int status, Object body) {
    try {
      byte[] bytes;
      String contentType;
      if (body instanceof byte[] binary) {
        bytes = binary;
        contentType = "application/octet-stream";
      } else if (body instanceof AgentRoutes.Text text) {
        bytes = text.body().getBytes(StandardCharsets.UTF_8);
        contentType = text.contentType();
      } else {
        bytes = Json.MAPPER.writeValueAsBytes(body);
        contentType = "application/json";
      }
      response.setStatus(status);
      response.getHeaders().put(HttpHeader.CONTENT_TYPE, contentType);
      response.getHeaders().put(HttpHeader.CONTENT_LENGTH, bytes.length);
      response.write(true, ByteBuffer.wrap(bytes), callback);
    } catch (IOException | RuntimeException e) {
      callback.failed(e);
    }
  }

  /** The identity in the client's certificate, read once per TLS session. */
  private static Optional<Identity> callerOf(Request request) {
    if (!(request.getAttribute(EndPoint.SslSessionData.ATTRIBUTE)
        instanceof EndPoint.SslSessionData ssl)) {
      return Optional.empty();
    }
    SSLSession session = ssl.sslSession();
    if (session != null && session.getValue(IDENTITY_KEY) instanceof Identity known) {
      return Optional.of(known);
    }
    X509Certificate[] chain = ssl.peerCertificates();
    Optional<Identity> identity = chain == null || chain.length == 0 ? Optional.empty()
        : Identity.of(chain[0]);
    if (session != null) {
      identity.ifPresent(id -> session.putValue(IDENTITY_KEY, id));
    }
    return identity;
  }

  private void stopQuietly() {
    try {
      server.stop();
    } catch (Exception ignored) {
      // already failing; the caller reports the first problem
    }
  }

  @Override
  public void close() {
    try {
      server.stop();
    } catch (Exception e) {
      log.warn("[{}] agent API did not stop cleanly: {}", host.site(), e.toString());
    }
  }
}
