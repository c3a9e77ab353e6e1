package io.siterecovery.agent;

import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import io.siterecovery.agent.server.AgentHttpServer;
import io.siterecovery.agent.server.AgentRoles;
import io.siterecovery.agent.testclone.TestClones;
import io.siterecovery.agent.metrics.AgentMetrics;
import io.siterecovery.agent.nbd.ExportResolver;
import io.siterecovery.agent.nbd.NbdServer;
import io.siterecovery.agent.nbd.NbdTls;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries;
import io.siterecovery.agent.objectstore.S3ObjectStore;
import io.siterecovery.agent.objectstore.recover.BucketSites;
import io.siterecovery.agent.objectstore.ship.BucketShipper;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.agent.replica.RecoveryAdoption;
import io.siterecovery.agent.replica.ReplicaRuns;
import io.siterecovery.agent.replica.ReplicaStore;
import io.siterecovery.agent.replica.Reversal;
import io.siterecovery.agent.source.OfflineChanges;
import io.siterecovery.agent.source.FenceAtStart;
import io.siterecovery.agent.source.ReplicationSource;
import io.siterecovery.agent.resync.ResyncSource;
import io.siterecovery.agent.resync.ResyncTarget;
import io.siterecovery.agent.scripts.PlanScripts;
import io.siterecovery.agent.vm.VmHost;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** One site's host agent: its VMs and disks, the NBD front-end and the HTTP API. */
public final class HostAgent implements Closeable {
  /**
   * Where an agent listens (port 0 picks a free port, for tests), the certificates it proves its
   * site with, and the peer sites it may replicate to (site name to https URL; more can be added
   * with {@link #addPeer}), and the API server's bounds (null: the defaults). NBD listens on
   * {@code nbdBind}, loopback unless told otherwise; it speaks TLS ({@code NBD_OPT_STARTTLS},
   * client certificates of the operator or this site) when {@code nbdTls} is set, which any
   * other address requires. Recovery-plan scripts are the executables in {@code scriptsDir}
   * (null: {@code <dataDir>/scripts}; a directory that does not exist holds no scripts).
   * {@code objectStores} are the object-store sites (by name) it may replicate VMs to.
   *
   * <p>A site may be both an object store and a peer: the site {@code cloud} is a bucket plus
   * a recovery-host agent. The bucket routes ({@code /v1/vms/{vm}/bucket/{site}/...},
   * {@code /v1/bucket-sites/...}, {@code recover-from-bucket}) use the store; the peer routes
   * and streams (replicas, reverse replication, resync, the fence check at start) use the
   * agent, as for any peer. Failback from the cloud needs both on each side: the primary ships
   * to the bucket and is the replica of the cloud agent after a failover there.
   */
  public record Settings(String site, Path dataDir, String bindHost, int httpPort, int nbdPort,
      TlsCredentials credentials, Map<String, String> peers, String nbdBind, boolean nbdTls,
      AgentHttpServer.Limits httpLimits, Path scriptsDir,
      Map<String, ObjectStoreSite> objectStores) {
    public static final String LOOPBACK = "127.0.0.1";

    public Settings {
      if (!credentials.identity().equals(Identity.site(site))) {
        throw new IllegalArgumentException("the agent of site " + site + " needs the certificate"
            + " of " + Identity.site(site) + ", not of " + credentials.identity());
      }
      peers = Map.copyOf(peers);
      httpLimits = httpLimits == null ? AgentHttpServer.Limits.defaults() : httpLimits;
      scriptsDir = scriptsDir == null ? dataDir.resolve(PlanScripts.DEFAULT_DIR) : scriptsDir;
      objectStores = objectStores == null ? Map.of() : Map.copyOf(objectStores);
      for (Map.Entry<String, ObjectStoreSite> store : objectStores.entrySet()) {
        if (!store.getKey().equals(store.getValue().name())) {
          throw new IllegalArgumentException(store.getValue() + " listed as " + store.getKey());
        }
      }
    }

    /** No object-store sites. */
    public Settings(String site, Path dataDir, String bindHost, int httpPort, int nbdPort,
        TlsCredentials credentials, Map<String, String> peers, String nbdBind, boolean nbdTls,
        AgentHttpServer.Limits httpLimits, Path scriptsDir) {
      this(site, dataDir, bindHost, httpPort, nbdPort, credentials, peers, nbdBind, nbdTls,
          httpLimits, scriptsDir, null);
    }

    /** Plan scripts in {@code <dataDir>/scripts}. */
    public Settings(String site, Path dataDir, String bindHost, int httpPort, int nbdPort,
        TlsCredentials credentials, Map<String, String> peers, String nbdBind, boolean nbdTls,
        AgentHttpServer.Limits httpLimits) {
      this(site, dataDir, bindHost, httpPort, nbdPort, credentials, peers, nbdBind, nbdTls,
          httpLimits, null);
    }

    /** NBD on loopback without TLS (the hypervisor runs on this host), the API's default bounds. */
    public Settings(String site, Path dataDir, String bindHost, int httpPort, int nbdPort,
        TlsCredentials credentials, Map<String, String> peers) {
      this(site, dataDir, bindHost, httpPort, nbdPort, credentials, peers, LOOPBACK, false, null,
          null);
    }
  }

  private static final int BUCKET_FETCH_THREADS = 4;

  private final Settings settings;
  private final VmHost host;
  private final NbdServer nbd;
  private final AgentHttpServer http;
  private final Peers peers;
  private final TestClones testClones;
  private final ReplicaRuns runs;
  private final PlanScripts scripts;
  private final BucketRecoveries bucketRecoveries;
  private final Map<String, BucketSites.Bucket> recoveryBuckets = new LinkedHashMap<>();
  private final BucketShipper buckets;
  private boolean closed;

  public HostAgent(Settings settings) throws IOException {
    this.settings = settings;
    // Before the VMs are loaded and their trackers opened: were images written while we were down?
    OfflineChanges.detect(settings.site(), settings.dataDir());
    this.host = new VmHost(settings.site(), settings.dataDir());
    this.testClones = new TestClones(host, this::nbdUri);
    host.watchReplicas(testClones);
    AgentMetrics metrics = new AgentMetrics(host);
    ReplicaStore replicas = new ReplicaStore(host, metrics);
    replicas.recover(); // a crash may have interrupted an apply or a rollback
    this.runs = new ReplicaRuns(host); // before NBD: a running replica serves its layers
    this.peers = new Peers(settings.credentials(), settings.peers());
    FenceAtStart.apply(host, peers); // before NBD: a VM that failed over must not run here too
    // The object-store sites this agent is configured with (--object-store) are the buckets it
    // may recover from; a recovery a previous run left for a site no longer configured waits.
    settings.objectStores().forEach((name, site) -> recoveryBuckets.put(name,
        new BucketSites.Bucket(new S3ObjectStore(site.config()), site.kek())));
    this.bucketRecoveries = new BucketRecoveries(settings.dataDir(),
        site -> Optional.ofNullable(recoveryBuckets.get(site)),
        name -> host.find(name).isPresent(), this::nbdUri, BUCKET_FETCH_THREADS,
        new RecoveryAdoption(host)); // finishes a commit a stop interrupted, before NBD serves
    this.nbd = new NbdServer(ExportResolver.of(host, testClones, bucketRecoveries),
        new InetSocketAddress(settings.nbdBind(), settings.nbdPort()),
        NbdServer.Limits.defaults(), settings.nbdTls() ? nbdTls(settings) : null, metrics);
    host.onPowerOff(vm -> nbd.disconnect(export -> export.startsWith(vm + "/")));
    testClones.onCleanup(vm -> nbd.disconnect(export -> export.startsWith(vm + "/")));
    bucketRecoveries.onDiscard(vm -> nbd.disconnect(export -> export.startsWith(vm + "/")));
    this.buckets = new BucketShipper(host, settings.objectStores(), metrics);
    ReplicationSource source = new ReplicationSource(host, peers::client, metrics,
        buckets::dropReplica);
    ResyncSource resync = new ResyncSource(host, peers::client, metrics);
    this.scripts = new PlanScripts(settings.site(), settings.scriptsDir());
    this.http = new AgentHttpServer(host,
        new AgentRoles(source, replicas, runs, new Reversal(host), resync,
            new ResyncTarget(host), testClones, scripts, metrics, bucketRecoveries,
            buckets),
        new InetSocketAddress(settings.bindHost(), settings.httpPort()), settings.credentials(),
        settings.httpLimits());
  }

  /**
   * NBD clients must hold the operator's certificate or this site's own (a hypervisor on this
   * site); a peer site may not read or write this site's disks.
   */
  private static NbdTls nbdTls(Settings settings) {
    Identity self = Identity.site(settings.site());
    return new NbdTls(settings.credentials().serverContext(), cert -> Identity.of(cert)
        .filter(id -> id.isOperator() || id.equals(self)).isPresent());
  }

  public String site() {
    return settings.site();
  }

  public String url() {
    return "https://" + settings.bindHost() + ":" + http.port();
  }

  /** Lets this agent replicate to {@code site} at {@code url} (https). */
  public void addPeer(String site, String url) {
    peers.put(site, url);
  }

  public int httpPort() {
    return http.port();
  }

  public int nbdPort() {
    return nbd.port();
  }

  public String nbdUri(String vm, String disk) {
    return (settings.nbdTls() ? "nbds://" : "nbd://") + settings.nbdBind() + ":" + nbd.port()
        + "/" + vm + "/" + disk;
  }

  public Path diskImage(String vm, String disk) {
    return settings.dataDir().resolve("vms").resolve(vm).resolve(disk + ".img");
  }

  public BucketRecoveries bucketRecoveries() {
    return bucketRecoveries;
  }

  public VmHost vms() {
    return host;
  }

  @Override
  public synchronized void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    // Scripts first: a run still going is killed and its caller told so, instead of holding the
    // API's stop until its timeout.
    scripts.close();
    http.close();
    nbd.close();
    testClones.close();
    bucketRecoveries.close();
    for (BucketSites.Bucket bucket : recoveryBuckets.values()) {
      bucket.store().close();
    }
    runs.close();
    buckets.close();
    host.close();
    // Only now, with no write possible, do the images' stamps describe the state we leave.
    OfflineChanges.recordCleanShutdown(settings.dataDir(), host.list());
  }
}
