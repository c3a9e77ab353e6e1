package io.siterecovery.agent.api;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages.*;
import io.siterecovery.agent.replication.ReplicaStore;
import io.siterecovery.agent.replication.ReplicationSource;
import io.siterecovery.agent.replication.ResyncSource;
import io.siterecovery.agent.replication.ResyncTarget;
import io.siterecovery.agent.replication.Transport;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agent's HTTP API (JSON, plus binary bodies for copies and logs). Plain HTTP for now; the
 * TLS seam is the {@link HttpServer} factory, which an HttpsServer with client auth replaces.
 */
public final class AgentHttpServer implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(AgentHttpServer.class);
  private static final String NAME = "([A-Za-z0-9][A-Za-z0-9_.-]*)";

  static {
    // The JDK server writes a response's headers and body separately; with Nagle's algorithm on,
    // the body then waits for the client's delayed ACK, 40 ms on Linux, on every exchange (a
    // resync step, a delta cycle's calls). Read once, when the first server is created.
    if (System.getProperty("sun.net.httpserver.nodelay") == null) {
      System.setProperty("sun.net.httpserver.nodelay", "true");
    }
  }

  private interface Handler {
    Object handle(Matcher path, HttpExchange exchange) throws IOException;
  }

  private record Route(String method, Pattern pattern, Handler handler) {}

  private final VmHost host;
  private final ReplicationSource source;
  private final ReplicaStore replicas;
  private final ResyncSource resyncSource;
  private final ResyncTarget resyncTarget;
  private final HttpServer server;
  private final ExecutorService executor;
  private final List<Route> routes = new ArrayList<>();

  public AgentHttpServer(VmHost host, ReplicationSource source, ReplicaStore replicas,
      InetSocketAddress bind) throws IOException {
    this(host, source, replicas, new ResyncSource(host, AgentClient::new), new ResyncTarget(host),
        bind);
  }

  public AgentHttpServer(VmHost host, ReplicationSource source, ReplicaStore replicas,
      ResyncSource resyncSource, ResyncTarget resyncTarget, InetSocketAddress bind)
      throws IOException {
    this.host = host;
    this.source = source;
    this.replicas = replicas;
    this.resyncSource = resyncSource;
    this.resyncTarget = resyncTarget;
    this.server = HttpServer.create(bind, 64);
    this.executor = Executors.newCachedThreadPool(r -> {
      Thread t = new Thread(r, "agent-http-" + host.site());
      t.setDaemon(true);
      return t;
    });
    server.setExecutor(executor);
    defineRoutes();
    server.createContext("/", this::dispatch);
    server.start();
    log.info("[{}] agent API on http://{}:{}", host.site(), bind.getHostString(), port());
  }

  public int port() {
    return server.getAddress().getPort();
  }

  private void route(String method, String regex, Handler handler) {
    routes.add(new Route(method, Pattern.compile(regex), handler));
  }

  private void defineRoutes() {
    route("GET", "/v1/health", (m, x) -> Map.of("site", host.site(), "status", "UP"));
    route("GET", "/v1/vms", (m, x) -> host.list());
    route("POST", "/v1/vms", (m, x) -> {
      CreateVmRequest r = body(x, CreateVmRequest.class);
      return host.create(r.name(), r.diskSizes()).record();
    });
    route("GET", "/v1/vms/" + NAME, (m, x) -> host.get(m.group(1)).record());
    route("POST", "/v1/vms/" + NAME + "/power", (m, x) -> {
      PowerRequest r = body(x, PowerRequest.class);
      require(r.state() != null, "state is required (RUNNING or OFF)");
      Vm vm = host.get(m.group(1));
      host.setPower(vm, r.state());
      return vm.record();
    });
    route("POST", "/v1/vms/" + NAME + "/role", (m, x) -> {
      RoleRequest r = body(x, RoleRequest.class);
      require(r.role() != null, "role is required");
      Vm vm = host.get(m.group(1));
      host.update(vm, rec -> rec.withRole(r.role()));
      return vm.record();
    });
    route("POST", "/v1/vms/" + NAME + "/protection", (m, x) -> {
      EnableProtectionRequest r = body(x, EnableProtectionRequest.class);
      require(r.targetSite() != null && r.targetUrl() != null, "targetSite and targetUrl are required");
      return source.enable(m.group(1), r.targetSite(), r.targetUrl());
    });
    route("DELETE", "/v1/vms/" + NAME + "/protection", (m, x) -> {
      source.disable(m.group(1));
      return host.get(m.group(1)).record();
    });
    route("POST", "/v1/vms/" + NAME + "/protection/initial-complete",
        (m, x) -> source.completeInitial(m.group(1)));
    route("POST", "/v1/vms/" + NAME + "/disks/" + NAME + "/copy", (m, x) -> {
      CopyRangeRequest r = body(x, CopyRangeRequest.class);
      return source.copyRange(m.group(1), m.group(2), r.offset(), r.length(), r.transfer());
    });
    route("POST", "/v1/vms/" + NAME + "/replicate", (m, x) -> {
      ReplicateRequest r = optionalBody(x, ReplicateRequest.class);
      if (r == null) {
        return source.replicate(m.group(1));
      }
      require(r.retentionSeconds() == null || r.retentionSeconds() >= 0,
          "retentionSeconds must not be negative");
      return source.replicate(m.group(1), r);
    });
    route("POST", "/v1/vms/" + NAME + "/resync/begin", (m, x) -> resyncSource.begin(m.group(1)));
    route("POST", "/v1/vms/" + NAME + "/disks/" + NAME + "/resync", (m, x) -> {
      ResyncStepRequest r = body(x, ResyncStepRequest.class);
      return resyncSource.step(m.group(1), m.group(2), r);
    });
    route("POST", "/v1/vms/" + NAME + "/resync/complete",
        (m, x) -> resyncSource.complete(m.group(1)));
    route("PUT", "/v1/vms/" + NAME + "/quiesce-hook", (m, x) -> {
      VmRecord.QuiesceHook hook = body(x, VmRecord.QuiesceHook.class);
      require(hook.command() != null && !hook.command().isEmpty()
          && !hook.command().get(0).isBlank(), "command is required (program and arguments)");
      require(hook.timeoutSeconds() > 0, "timeoutSeconds must be positive");
      Vm vm = host.get(m.group(1));
      host.update(vm, rec -> rec.withQuiesce(hook));
      return vm.record();
    });
    route("DELETE", "/v1/vms/" + NAME + "/quiesce-hook", (m, x) -> {
      Vm vm = host.get(m.group(1));
      host.update(vm, rec -> rec.withQuiesce(null));
      return vm.record();
    });
    route("GET", "/v1/vms/" + NAME + "/replication", (m, x) -> source.status(m.group(1)));
    route("POST", "/v1/replicas", (m, x) -> {
      CreateReplicaRequest r = body(x, CreateReplicaRequest.class);
      return replicas.create(r.vm(), r.sourceSite(), r.disks());
    });
    route("DELETE", "/v1/replicas/" + NAME, (m, x) -> {
      replicas.delete(m.group(1));
      return Map.of("deleted", m.group(1));
    });
    route("PUT", "/v1/replicas/" + NAME + "/disks/" + NAME + "/ranges", (m, x) -> {
      try (InputStream in = decodedBody(x)) {
        return Map.of("bytesWritten", replicas.receiveRanges(m.group(1), m.group(2), in));
      }
    });
    route("PUT", "/v1/replicas/" + NAME + "/disks/" + NAME + "/logs/([0-9]+)", (m, x) -> {
      try (InputStream in = decodedBody(x)) {
        replicas.stageLog(m.group(1), m.group(2), Long.parseLong(m.group(3)), in);
        return Map.of("staged", Long.parseLong(m.group(3)));
      }
    });
    route("POST", "/v1/replicas/" + NAME + "/apply", (m, x) -> {
      ApplyRequest r = body(x, ApplyRequest.class);
      return replicas.apply(m.group(1), r);
    });
    route("POST", "/v1/replicas/" + NAME + "/rollback", (m, x) -> {
      RollbackRequest r = body(x, RollbackRequest.class);
      require(r.generation() != null, "generation is required");
      return replicas.rollback(m.group(1), r.generation());
    });
    route("POST", "/v1/replicas/" + NAME + "/initial-complete",
        (m, x) -> replicas.completeInitial(m.group(1)));
    route("POST", "/v1/replicas/" + NAME + "/resync/begin", (m, x) -> {
      ResyncBegin r = body(x, ResyncBegin.class);
      return resyncTarget.begin(m.group(1), r.generation());
    });
    route("POST", "/v1/replicas/" + NAME + "/disks/" + NAME + "/checksums", (m, x) -> {
      ChecksumRequest r = body(x, ChecksumRequest.class);
      return resyncTarget.checksums(m.group(1), m.group(2), r);
    });
    route("POST", "/v1/replicas/" + NAME + "/resync/complete", (m, x) -> {
      ResyncBegin r = body(x, ResyncBegin.class);
      return resyncTarget.complete(m.group(1), r.generation());
    });
  }

  /** A binary request body as the sender meant it (see {@link Transport}). */
  private static InputStream decodedBody(HttpExchange x) throws IOException {
    return Transport.decode(x.getRequestBody(),
        x.getRequestHeaders().getFirst(Transport.CONTENT_ENCODING));
  }

  /** A JSON body that may be left out entirely (null then). */
  private static <T> T optionalBody(HttpExchange x, Class<T> type) throws IOException {
    try (InputStream in = x.getRequestBody()) {
      byte[] bytes = in.readAllBytes();
      if (bytes.length == 0) {
        return null;
      }
      return Json.MAPPER.readValue(bytes, type);
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "bad request body: " + e.getOriginalMessage());
    }
  }

  private static void require(boolean condition, String message) {
    if (!condition) {
      throw new AgentException(ErrorCode.BAD_REQUEST, message);
    }
  }

  private static <T> T body(HttpExchange x, Class<T> type) throws IOException {
    T value = optionalBody(x, type);
    if (value == null) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "request body required");
    }
    return value;
  }

  private void dispatch(HttpExchange x) throws IOException {
    String path = x.getRequestURI().getPath();
    try {
      for (Route r : routes) {
        Matcher m = r.pattern().matcher(path);
        if (m.matches() && r.method().equals(x.getRequestMethod())) {
          send(x, 200, r.handler().handle(m, x));
          return;
        }
      }
      send(x, 404, new ErrorBody(ErrorCode.BAD_REQUEST.name(),
          "no route " + x.getRequestMethod() + " " + path));
    } catch (AgentException e) {
      if (e.code().recoverable()) {
        log.warn("[{}] {} {} failed: {}", host.site(), x.getRequestMethod(), path, e.getMessage());
      } else {
        log.info("[{}] {} {} refused: {}", host.site(), x.getRequestMethod(), path, e.getMessage());
      }
      send(x, e.code().httpStatus(), new ErrorBody(e.code().name(), e.getMessage()));
    } catch (IOException | RuntimeException e) {
      log.error("[{}] {} {} failed", host.site(), x.getRequestMethod(), path, e);
      send(x, 500, new ErrorBody(ErrorCode.IO_ERROR.name(), e.toString()));
    } finally {
      x.close();
    }
  }

  private static void send(HttpExchange x, int status, Object body) throws IOException {
    boolean binary = body instanceof byte[];
    byte[] bytes = binary ? (byte[]) body : Json.MAPPER.writeValueAsBytes(body);
    x.getResponseHeaders().set("Content-Type", binary ? "application/octet-stream"
        : "application/json");
    x.sendResponseHeaders(status, bytes.length);
    try (OutputStream out = x.getResponseBody()) {
      out.write(bytes);
    }
  }

  @Override
  public void close() {
    server.stop(0);
    executor.shutdownNow();
  }
}
