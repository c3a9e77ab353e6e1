package io.siterecovery.agent.testing;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.security.CertificateAuthority;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * One deployment CA for the whole test JVM (in a temp folder), with certificates issued on first
 * use: tests run over TLS with client certificates exactly as production does.
 */
public final class TestCerts {
  private static final Map<Identity, TlsCredentials> LOADED = new ConcurrentHashMap<>();
  private static CertificateAuthority ca;

  private TestCerts() {}

  /** The folder holding {@code ca.pem} and every identity issued so far. */
  public static synchronized Path dir() {
    if (ca == null) {
      try {
        Path dir = Files.createTempDirectory("sr-test-certs-");
        dir.toFile().deleteOnExit();
        ca = CertificateAuthority.create(dir, "tests");
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    }
    return ca.dir();
  }

  public static synchronized CertificateAuthority ca() {
    dir();
    return ca;
  }

  /** The credentials of {@code identity}, issued the first time they are asked for. */
  public static TlsCredentials credentials(Identity identity) {
    return LOADED.computeIfAbsent(identity, id -> {
      try {
        Path dir = dir();
        synchronized (TestCerts.class) {
          if (!Files.exists(dir.resolve(id.fileStem() + ".pem"))) {
            ca.issue(id, List.of());
          }
        }
        return TlsCredentials.load(dir, id);
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }

  public static TlsCredentials site(String site) {
    return credentials(Identity.site(site));
  }

  public static TlsCredentials operator() {
    return credentials(Identity.operator());
  }

  /** The operator's client of an in-process agent. */
  public static AgentClient operatorClient(HostAgent agent) {
    return operatorClient(agent.url(), agent.site());
  }

  /** The operator's client of the agent of {@code site} at {@code url}. */
  public static AgentClient operatorClient(String url, String site) {
    return new AgentClient(url, operator(), Identity.site(site));
  }

  /** A client of {@code agent} acting as {@code identity} (a peer site, say). */
  public static AgentClient clientAs(Identity identity, HostAgent agent) {
    return new AgentClient(agent.url(), credentials(identity), Identity.site(agent.site()));
  }
}
