package io.siterecovery.agent;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The other sites this agent replicates to, from its own configuration ({@code --peer
 * NAME=URL}). A replication target is named by site in requests and resolved here, so no request
 * can point a disk's bytes at an address of its choosing; the connection then checks that the
 * other end holds the certificate of that site.
 */
public final class Peers {
  private final TlsCredentials credentials;
  private final Map<String, String> urls = new ConcurrentHashMap<>();
  private final Map<String, AgentClient> clients = new ConcurrentHashMap<>();

  public Peers(TlsCredentials credentials, Map<String, String> urls) {
    this.credentials = credentials;
    urls.forEach(this::put);
  }

  /** Adds or moves a peer site. */
  public void put(String site, String url) {
    Identity.site(site); // a site name an identity can carry
    urls.put(site, url);
    clients.remove(site);
  }

  public Map<String, String> urls() {
    return Map.copyOf(urls);
  }

  /** The client for a peer site; a site this agent has no address for is a named error. */
  public AgentClient client(String site) {
    String url = urls.get(site);
    if (url == null) {
      throw new AgentException(ErrorCode.INVALID_STATE, "site " + site + " is not a peer of this"
          + " agent; start the agent with --peer " + site + "=https://HOST:PORT");
    }
    return clients.computeIfAbsent(site, s -> AgentClient.toPeer(url, credentials, Identity.site(s)));
  }
}
