package io.siterecovery.activities;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/**
 * The sites this worker knows: each site's agent URL and the site it replicates to. A site may
 * be an object store: a bucket that VMs replicate to, whose agent is the recovery host that
 * materialises them from it at failover.
 */
public final class SiteDirectory {
  /**
   * What the worker knows of an object-store site, to check that every agent using it means the
   * same bucket: its endpoint, bucket and prefix, and the fingerprint of the key-encryption key
   * (null: not checked). The credentials and the key stay on the agents' hosts.
   */
  public record ObjectStore(String endpoint, String bucket, String prefix, String keyId) {}

  private final Map<String, String> agentUrls;
  private final Map<String, String> partners;
  private final Map<String, ObjectStore> objectStores;
  private final Map<String, AgentClient> clients = new LinkedHashMap<>();

  /** {@code operator}: the worker's certificate; each agent must prove to be its site. */
  public SiteDirectory(Map<String, String> agentUrls, Map<String, String> partners,
      TlsCredentials operator) {
    this(agentUrls, partners, Map.of(), operator);
  }

  /** As above; {@code objectStores}: which of the sites are buckets (each needs an agent). */
  public SiteDirectory(Map<String, String> agentUrls, Map<String, String> partners,
      Map<String, ObjectStore> objectStores, TlsCredentials operator) {
    this.agentUrls = Map.copyOf(agentUrls);
    this.partners = Map.copyOf(partners);
    this.objectStores = Map.copyOf(objectStores);
    objectStores.keySet().forEach(site -> {
      if (!agentUrls.containsKey(site)) {
        throw new IllegalArgumentException("object-store site " + site + " has no agent (its "
            + "recovery host) among the sites");
      }
    });
    agentUrls.forEach((site, url) -> clients.put(site,
        new AgentClient(url, operator, Identity.site(site))));
  }

  public Map<String, String> agentUrls() {
    return agentUrls;
  }

  public Optional<AgentClient> agent(String site) {
    return Optional.ofNullable(clients.get(site));
  }

  public Optional<String> partnerOf(String site) {
    return Optional.ofNullable(partners.get(site));
  }

  public Iterable<String> sites() {
    return clients.keySet();
  }

  public boolean isObjectStore(String site) {
    return objectStores.containsKey(site);
  }

  public Optional<ObjectStore> objectStore(String site) {
    return Optional.ofNullable(objectStores.get(site));
  }
}
