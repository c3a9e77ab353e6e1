package io.siterecovery.workers.cli;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.StopSignal;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import java.util.LinkedHashMap;
import java.util.Map;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(name = "agent", description = "Run one site's host agent (HTTP API and NBD exports).")
final class AgentCommand implements Callable<Integer> {
  @Option(names = "--site", required = true, description = "site name, e.g. primary")
  String site;

  @Option(names = "--data", required = true, description = "data directory of this agent")
  Path data;

  @Option(names = "--bind", defaultValue = "127.0.0.1", description = "address the API listens on (default: ${DEFAULT-VALUE})")
  String bind;

  @Option(names = "--http", defaultValue = "8701", description = "HTTP API port (default: ${DEFAULT-VALUE})")
  int http;

  @Option(names = "--nbd", defaultValue = "10809", description = "NBD port (default: ${DEFAULT-VALUE})")
  int nbd;

  @Option(names = "--nbd-bind", defaultValue = "127.0.0.1", description = "address NBD listens "
      + "on (default: ${DEFAULT-VALUE}); any other address needs --nbd-tls")
  String nbdBind;

  @Option(names = "--nbd-tls", description = "NBD clients must start TLS (NBD_OPT_STARTTLS) with "
      + "a certificate of the operator or this site, as qemu-nbd --tls-creds does")
  boolean nbdTls;

  @Option(names = "--certs", required = true, description = "folder with ca.pem and this site's "
      + "site-<name>.pem and site-<name>-key.pem (see 'site-recovery certs')")
  Path certs;

  @Option(names = "--scripts", description = "folder of recovery-plan scripts this agent may run"
      + " by name (default: DATA/scripts; absent: no scripts). Each must be an executable owned"
      + " by the agent's user or root and writable by its owner only")
  Path scripts;

  @Option(names = "--peer", description = "a site this agent may replicate to, SITE=https://HOST:PORT;"
      + " repeat for more")
  Map<String, String> peers = new LinkedHashMap<>();

  @Option(names = "--object-store", description = "an object-store site this agent may replicate"
      + " VMs to, SITE=FILE; FILE is JSON with endpoint, region, bucket, prefix, accessKeyFile and"
      + " secretKeyFile (or accessKeyEnv and secretKeyEnv), kekFile; repeat for more")
  Map<String, Path> objectStores = new LinkedHashMap<>();

  @Override
  public Integer call() throws Exception {
    Map<String, ObjectStoreSite> stores = new LinkedHashMap<>();
    for (Map.Entry<String, Path> e : objectStores.entrySet()) {
      try {
        stores.put(e.getKey(), ObjectStoreSite.load(e.getKey(), e.getValue()));
      } catch (IllegalArgumentException refused) {
        System.err.println("agent: " + refused.getMessage());
        return 2;
      }
    }
    try (StopSignal stop = StopSignal.install("agent", StopSignal.DEFAULT_BOUND);
        HostAgent agent = new HostAgent(new HostAgent.Settings(site, data, bind, http, nbd,
        TlsCredentials.load(certs, Identity.site(site)), peers, nbdBind, nbdTls, null, scripts,
        stores))) {
      System.out.printf("agent %s up: API %s (TLS, client certificates), NBD port %d, peers %s%n",
          site, agent.url(), agent.nbdPort(), peers.isEmpty() ? "none" : peers);
      // toString names the bucket and the key's id only, never a credential or the key
      stores.values().forEach(store -> System.out.println("  replicates to " + store));
      stop.await();
    }
    return 0;
  }
}
