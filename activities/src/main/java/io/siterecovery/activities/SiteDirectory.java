package io.siterecovery.activities;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;

/** The sites this worker knows: each site's agent URL and the site it replicates to. */
public final class SiteDirectory {
  private final Map<String, String> agentUrls;
  private final Map<String, String> partners;
  private final Map<String, AgentClient> clients = new LinkedHashMap<>();

  /** {@code operator}: the worker's certificate; each agent must prove to be its site. */
  public SiteDirectory(Map<String, String> agentUrls, Map<String, String> partners,
      TlsCredentials operator) {
    this.agentUrls = Map.copyOf(agentUrls);
    this.partners = Map.copyOf(partners);
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
}
