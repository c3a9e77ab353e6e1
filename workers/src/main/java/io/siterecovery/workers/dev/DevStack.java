package io.siterecovery.workers.dev;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.security.CertificateAuthority;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.temporal.client.WorkflowClient;
import io.temporal.testserver.TestServer;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
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
 * worker, and one agent per site, all in this process. The third site, {@code cloud}, is an
 * S3-compatible bucket (s3proxy, in process) with its recovery host's agent; the two other agents
 * can ship any VM to it.
 */
public final class DevStack implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(DevStack.class);

  /** Ports of the stack; 0 picks free ports (tests). */
  public record Ports(int temporal, int primaryHttp, int secondaryHttp, int primaryNbd,
      int secondaryNbd, int cloudHttp, int cloudNbd, int cloudS3) {
    /** The cloud site's ports free ones. */
    public Ports(int temporal, int primaryHttp, int secondaryHttp, int primaryNbd,
        int secondaryNbd) {
      this(temporal, primaryHttp, secondaryHttp, primaryNbd, secondaryNbd, 0, 0, 0);
    }

    public static Ports defaults() {
      return new Ports(SiteRecoveryConfig.DEV_TEMPORAL_PORT, SiteRecoveryConfig.DEV_PRIMARY_HTTP,
          SiteRecoveryConfig.DEV_SECONDARY_HTTP, SiteRecoveryConfig.DEV_PRIMARY_NBD,
          SiteRecoveryConfig.DEV_SECONDARY_NBD, SiteRecoveryConfig.DEV_CLOUD_HTTP,
          SiteRecoveryConfig.DEV_CLOUD_NBD, SiteRecoveryConfig.DEV_CLOUD_S3);
    }
  }

  private final TestServer.PortBoundTestServer temporal;
  private final HostAgent primary;
  private final HostAgent secondary;
  private final CloudBucket bucket;
  private final HostAgent cloud;
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
    int temporalPort = ports.temporal() == 0 ? FreePorts.next() : ports.temporal();
    try {
      // lockTimeSkipping=true: the dev server runs in real time, timers are not skipped.
      this.temporal = TestServer.createPortBoundServer(temporalPort, true);
    } catch (RuntimeException e) {
      throw new IOException("cannot start the embedded Temporal server on port " + temporalPort
          + " (is another 'dev' or a Temporal server running?): " + e.getMessage(), e);
    }
    Path certs = dataDir.resolve(SiteRecoveryConfig.CERTS_DIR);
    HostAgent primaryAgent = null;
    HostAgent secondaryAgent = null;
    CloudBucket cloudBucket = null;
    try {
      // Secure by default: a CA and a certificate per identity, made on first start and kept
      // (the monitor's for a local Prometheus or curl on GET /metrics).
      CertificateAuthority.provision(certs, "dev", List.of(Identity.site("primary"),
          Identity.site("secondary"), Identity.site(CloudBucket.SITE), Identity.operator(),
          Identity.monitor(), Identity.worker()));
      cloudBucket = CloudBucket.start(dataDir.resolve("cloud-bucket"), ports.cloudS3());
      Map<String, ObjectStoreSite> stores = Map.of(CloudBucket.SITE, cloudBucket.site());
      primaryAgent = agent("primary", dataDir, ports.primaryHttp(), ports.primaryNbd(), certs,
          stores);
      secondaryAgent = agent("secondary", dataDir, ports.secondaryHttp(), ports.secondaryNbd(),
          certs, stores);
      this.cloud = agent(CloudBucket.SITE, dataDir, ports.cloudHttp(),
          ports.cloudNbd(), certs, stores);
    } catch (IOException | RuntimeException e) {
      closeQuietly(secondaryAgent);
      closeQuietly(primaryAgent);
      closeQuietly(cloudBucket);
      temporal.close();
      if (e instanceof BindException) {
        throw new IOException("an agent port is taken (another 'dev' running?): "
            + e.getMessage(), e);
      }
      throw e;
    }
    this.primary = primaryAgent;
    this.secondary = secondaryAgent;
    this.bucket = cloudBucket;
    primary.addPeer("secondary", secondary.url());
    secondary.addPeer("primary", primary.url());
    // After a failover to the cloud its agent runs the VM and replicates it back (failback).
    for (HostAgent onPremises : List.of(primary, secondary)) {
      onPremises.addPeer(CloudBucket.SITE, cloud.url());
      cloud.addPeer(onPremises.site(), onPremises.url());
    }
    this.config = SiteRecoveryConfig.dev(temporalPort, port(primary), port(secondary), certs)
        .withObjectStores(Map.of(CloudBucket.SITE, cloud.url()), Map.of(),
            Map.of(CloudBucket.SITE, new SiteRecoveryConfig.ObjectStore(
                bucket.endpoint().toString(), CloudBucket.BUCKET, "",
                bucket.site().kek().id())))
        .withPolicies(policies).withPlans(plans);
    this.worker = new WorkerRunner(config);
    log.info("dev stack up: Temporal 127.0.0.1:{}, agents primary {} (NBD :{}), secondary {} "
        + "(NBD :{}), cloud {} (NBD :{}, bucket {} at {}), data in {}", temporalPort,
        primary.url(), primary.nbdPort(), secondary.url(), secondary.nbdPort(), cloud.url(),
        cloud.nbdPort(), CloudBucket.BUCKET, bucket.endpoint(), dataDir.toAbsolutePath());
  }

  private static HostAgent agent(String site, Path dataDir, int http, int nbd, Path certs,
      Map<String, ObjectStoreSite> stores) throws IOException {
    return new HostAgent(new HostAgent.Settings(site, dataDir.resolve(site), "127.0.0.1", http,
        nbd, TlsCredentials.load(certs, Identity.site(site)), Map.of(), HostAgent.Settings.LOOPBACK,
        false, null, null,
        stores));
  }

  private static void closeQuietly(Closeable c) {
    try {
      if (c != null) {
        c.close();
      }
    } catch (IOException | RuntimeException e) {
      log.warn("while giving up the dev stack: {}", e.toString());
    }
  }

  private static int port(HostAgent agent) {
    return java.net.URI.create(agent.url()).getPort();
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

  public HostAgent cloud() {
    return cloud;
  }

  /** The bucket of site {@code cloud}: its endpoint, its objects at rest. */
  public CloudBucket bucket() {
    return bucket;
  }

  public HostAgent agent(String site) {
    return switch (site) {
      case "primary" -> primary;
      case "secondary" -> secondary;
      case CloudBucket.SITE -> cloud;
      default -> throw new IllegalArgumentException("no site " + site + " in the dev stack");
    };
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
          try {
            cloud.close();
          } finally {
            try {
              bucket.close();
            } finally {
              temporal.close();
            }
          }
        }
      }
    }
  }
}
