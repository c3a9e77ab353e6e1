package io.siterecovery.agent;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentHttpServer;
import io.siterecovery.agent.nbd.NbdServer;
import io.siterecovery.agent.replication.ReplicaStore;
import io.siterecovery.agent.replication.OfflineChanges;
import io.siterecovery.agent.replication.ReplicationSource;
import io.siterecovery.agent.replication.ResyncSource;
import io.siterecovery.agent.replication.ResyncTarget;
import io.siterecovery.agent.vm.VmHost;
import java.io.Closeable;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/** One site's host agent: its VMs and disks, the NBD front-end and the HTTP API. */
public final class HostAgent implements Closeable {
  /** Where an agent listens; port 0 picks a free port (tests). */
  public record Settings(String site, Path dataDir, String bindHost, int httpPort, int nbdPort) {}

  private final Settings settings;
  private final VmHost host;
  private final NbdServer nbd;
  private final AgentHttpServer http;

  public HostAgent(Settings settings) throws IOException {
    this.settings = settings;
    // Before the VMs are loaded and their trackers opened: were images written while we were down?
    OfflineChanges.detect(settings.site(), settings.dataDir());
    this.host = new VmHost(settings.site(), settings.dataDir());
    this.nbd = new NbdServer(host, new InetSocketAddress(settings.bindHost(), settings.nbdPort()));
    host.onPowerOff(vm -> nbd.disconnect(export -> export.startsWith(vm + "/")));
    Map<String, AgentClient> peers = new ConcurrentHashMap<>();
    ReplicationSource source = new ReplicationSource(host,
        url -> peers.computeIfAbsent(url, AgentClient::new));
    ResyncSource resync = new ResyncSource(host, url -> peers.computeIfAbsent(url, AgentClient::new));
    ReplicaStore replicas = new ReplicaStore(host);
    replicas.recover(); // a crash may have interrupted an apply or a rollback
    this.http = new AgentHttpServer(host, source, replicas, resync,
        new ResyncTarget(host), new InetSocketAddress(settings.bindHost(), settings.httpPort()));
  }

  public String site() {
    return settings.site();
  }

  public String url() {
    return "http://" + settings.bindHost() + ":" + http.port();
  }

  public int httpPort() {
    return http.port();
  }

  public int nbdPort() {
    return nbd.port();
  }

  public String nbdUri(String vm, String disk) {
    return "nbd://" + settings.bindHost() + ":" + nbd.port() + "/" + vm + "/" + disk;
  }

  public Path diskImage(String vm, String disk) {
    return settings.dataDir().resolve("vms").resolve(vm).resolve(disk + ".img");
  }

  public VmHost vms() {
    return host;
  }

  @Override
  public void close() throws IOException {
    http.close();
    nbd.close();
    host.close();
    // Only now, with no write possible, do the images' stamps describe the state we leave.
    OfflineChanges.recordCleanShutdown(settings.dataDir(), host.list());
  }
}
