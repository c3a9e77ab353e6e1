package io.siterecovery.workers.bench;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.agent.security.CertificateAuthority;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/** A primary and a secondary host agent in this process, on 127.0.0.1 with free ports. */
final class LocalSites implements AutoCloseable {
  static final long MIB = 1L << 20;

  final HostAgent primary;
  final HostAgent secondary;
  final AgentClient source;

  LocalSites(Path dir) throws IOException {
    primary = agent("primary", dir.resolve("primary"));
    try {
      secondary = agent("secondary", dir.resolve("secondary"));
    } catch (IOException | RuntimeException e) {
      primary.close();
      throw e;
    }
    primary.addPeer(secondary.site(), secondary.url());
    secondary.addPeer(primary.site(), primary.url());
    source = operatorClient(primary.url(), primary.site());
  }

  private static Path certs;

  /**
   * The bench's own CA (a temp folder), with a certificate for every identity it asked for: the
   * bench measures the product as it runs, over TLS with client certificates.
   */
  static synchronized Path certs(String... sites) {
    try {
      if (certs == null) {
        certs = Files.createTempDirectory("sr-bench-certs-");
        certs.toFile().deleteOnExit();
      }
      List<Identity> identities = new java.util.ArrayList<>(List.of(Identity.operator(),
          Identity.worker()));
      for (String site : sites) {
        identities.add(Identity.site(site));
      }
      CertificateAuthority.provision(certs, "bench", identities);
      return certs;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static TlsCredentials credentials(Identity identity) {
    try {
      Path dir = identity.siteName().map(LocalSites::certs).orElseGet(LocalSites::certs);
      return TlsCredentials.load(dir, identity);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  static AgentClient operatorClient(String url, String site) {
    return new AgentClient(url, credentials(Identity.operator()), Identity.site(site));
  }

  static HostAgent agent(String site, Path dataDir) throws IOException {
    return agent(site, dataDir, Map.of());
  }

  /** An agent that also knows these object-store sites, as {@code --object-store} gives them. */
  static HostAgent agent(String site, Path dataDir, Map<String, ObjectStoreSite> objectStores)
      throws IOException {
    return new HostAgent(new HostAgent.Settings(site, dataDir, "127.0.0.1", 0, 0,
        credentials(Identity.site(site)), Map.of(), HostAgent.Settings.LOOPBACK, false, null,
        null, objectStores));
  }

  /** Protects a one-disk VM and runs its initial replication as the workflow would. */
  void protect(String vm, long diskSize) {
    source.enableProtection(vm, secondary.site());
    for (long at = 0; at < diskSize; ) {
      at = source.copyRange(vm, "disk0", at, Math.min(256 * MIB, diskSize - at)).nextOffset();
    }
    source.replicate(vm);
    source.completeInitialReplication(vm);
  }

  @Override
  public void close() throws IOException {
    try {
      primary.close();
    } finally {
      secondary.close();
    }
  }
}
