package io.siterecovery.workers.dev;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.security.CertificateAuthority;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.temporal.client.WorkflowClient;
import io.temporal.testserver.TestServer;
import java.io.Closeable;
import java.io.IOException;
import java.net.BindException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The embedded default: Temporal's test server on a real gRPC port (real time, in memory), the
 * worker, and one agent per site, all in this process.
 */
public final class DevStack implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(DevStack.class);

  /** Ports of the stack; 0 picks free ports (tests). */
  public record Ports(int temporal, int primaryHttp, int secondaryHttp, int primaryNbd,
      int secondaryNbd) {
    public static Ports defaults() {
      return new Ports(SiteRecoveryConfig.DEV_TEMPORAL_PORT, SiteRecoveryConfig.DEV_PRIMARY_HTTP,
          SiteRecoveryConfig.DEV_SECONDARY_HTTP, SiteRecoveryConfig.DEV_PRIMARY_NBD,
          SiteRecoveryConfig.DEV_SECONDARY_NBD);
    }
  }

  private final TestServer.PortBoundTestServer temporal;
  private final HostAgent primary;
  private final HostAgent secondary;
  private final WorkerRunner worker;
  private final SiteRecoveryConfig config;

  public DevStack(Path dataDir, Ports ports) throws IOException {
    this(dataDir, ports, Map.of());
  }

  /** {@code policies}: added to (or replacing) the dev configuration's policies. */
  public DevStack(Path dataDir, Ports ports, Map<String, SiteRecoveryConfig.Policy> policies)
      throws IOException {
    this(dataDir, ports, policies, Map.of());
  }

  /**
   * {@code policies} as above; {@code plans}: the recovery plans (checked as a configuration
   * file's are).
   */
  public DevStack(Path dataDir, Ports ports, Map<String, SiteRecoveryConfig.Policy> policies,
      Map<String, SiteRecoveryConfig.Plan> plans) throws IOException {
    int temporalPort = ports.temporal() == 0 ? freePort() : ports.temporal();
    try {
      // lockTimeSkipping=true: the dev server runs in real time, timers are not skipped.
      this.temporal = TestServer.createPortBoundServer(temporalPort, true);
    } catch (RuntimeException e) {
      throw new IOException("cannot start the embedded Temporal server on port " + temporalPort
          + " (is another 'dev' or a Temporal server running?): " + e.getMessage(), e);
    }
    Path certs = dataDir.resolve(SiteRecoveryConfig.CERTS_DIR);
    try {
      // Secure by default: a CA and a certificate per identity, made on first start and kept
      // (the monitor's for a local Prometheus or curl on GET /metrics).
      CertificateAuthority.provision(certs, "dev", List.of(Identity.site("primary"),
          Identity.site("secondary"), Identity.operator(), Identity.monitor(),
          Identity.worker()));
      this.primary = new HostAgent(new HostAgent.Settings("primary", dataDir.resolve("primary"),
          "127.0.0.1", ports.primaryHttp(), ports.primaryNbd(),
          TlsCredentials.load(certs, Identity.site("primary")), Map.of()));
      this.secondary = new HostAgent(new HostAgent.Settings("secondary",
          dataDir.resolve("secondary"), "127.0.0.1", ports.secondaryHttp(), ports.secondaryNbd(),
          TlsCredentials.load(certs, Identity.site("secondary")), Map.of()));
    } catch (IOException e) {
      temporal.close();
      if (e instanceof BindException) {
        throw new IOException("an agent port is taken (another 'dev' running?): "
            + e.getMessage(), e);
      }
      throw e;
    }
    primary.addPeer("secondary", secondary.url());
    secondary.addPeer("primary", primary.url());
    this.config = SiteRecoveryConfig.dev(temporalPort, port(primary), port(secondary), certs)
        .withPolicies(policies).withPlans(plans);
    this.worker = new WorkerRunner(config);
    log.info("dev stack up: Temporal 127.0.0.1:{}, agents primary {} (NBD :{}), secondary {} "
        + "(NBD :{}), data in {}", temporalPort, primary.url(), primary.nbdPort(),
        secondary.url(), secondary.nbdPort(), dataDir.toAbsolutePath());
  }

  private static int port(HostAgent agent) {
    return java.net.URI.create(agent.url()).getPort();
  }

  private static int freePort() throws IOException {
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      return s.getLocalPort();
    }
  }

  public SiteRecoveryConfig config() {
    return config;
  }

  public WorkflowClient client() {
    return worker.client();
  }

  public HostAgent primary() {
    return primary;
  }

  public HostAgent secondary() {
    return secondary;
  }

  /** The operator's client of a site's agent, as the CLI and the worker reach it. */
  public io.siterecovery.agent.api.AgentClient operatorClient(HostAgent agent) {
    return new io.siterecovery.agent.api.AgentClient(agent.url(), config.operatorCredentials(),
        Identity.site(agent.site()));
  }

  public HostAgent agent(String site) {
    return site.equals("primary") ? primary : secondary;
  }

  /**
   * In order: the worker first (no activity calls an agent any more), then each agent (flushed,
   * its clean-shutdown stamp written), then Temporal; a failure of one step skips no later one.
   */
  @Override
  public void close() throws IOException {
    try {
      worker.close();
    } finally {
      try {
        primary.close();
      } finally {
        try {
          secondary.close();
        } finally {
          temporal.close();
        }
      }
    }
  }
}
