package io.siterecovery.workers.cli;

import io.siterecovery.agent.security.CertificateAuthority;
import io.siterecovery.agent.security.Identity;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "certs", description = "The deployment's CA and a certificate per identity: "
    + "site:<name> for each site's agent, operator for the worker and the CLI.",
    subcommands = {CertsCommand.Init.class, CertsCommand.Issue.class,
        CertsCommand.NbdClient.class})
final class CertsCommand {

  @Command(name = "init", description = "Create a new CA in DIR with certificates for the "
      + "operator, the metrics scraper, the worker's health endpoint and each --site: ca.pem, "
      + "operator.pem, monitor.pem, worker.pem, site-<name>.pem, a -key.pem beside each.")
  static final class Init implements Callable<Integer> {
    @Option(names = "--dir", required = true, description = "folder for the CA and certificates")
    Path dir;

    @Option(names = "--site", description = "a site to issue an agent certificate for; repeat")
    List<String> sites = new ArrayList<>();

    @Option(names = "--host", description = "SITE=HOST: a DNS name or IP address the site's agent "
        + "is reached at, for clients that check host names (curl, nbdinfo); repeat")
    Map<String, String> hosts = new LinkedHashMap<>();

    @Option(names = "--worker-host", description = "a DNS name or IP address the workers' health "
        + "and metrics endpoint is reached at, besides localhost; repeat")
    List<String> workerHosts = new ArrayList<>();

    @Option(names = "--name", defaultValue = "site-recovery", description = "deployment name in "
        + "the CA's subject (default: ${DEFAULT-VALUE})")
    String name;

    @Override
    public Integer call() throws Exception {
      CertificateAuthority ca = CertificateAuthority.create(dir, name);
      System.out.printf("created CA %s (valid %d days)%n", dir.resolve(CertificateAuthority.CA_CERT),
          CertificateAuthority.CA_VALIDITY.toDays());
      print(ca.issue(Identity.operator(), List.of()), Identity.operator());
      // Prometheus gets a certificate of its own that opens GET /metrics and nothing else.
      print(ca.issue(Identity.monitor(), List.of()), Identity.monitor());
      // The workers serve health and metrics over TLS with this one; agents grant it nothing.
      print(ca.issue(Identity.worker(), workerHosts), Identity.worker());
      for (String site : sites) {
        Identity id = Identity.site(site);
        List<String> names = hosts.containsKey(site) ? List.of(hosts.get(site).split(","))
            : List.of();
        print(ca.issue(id, names), id);
      }
      System.out.printf("keep %s secret: whoever holds it can mint any identity%n",
          dir.resolve(CertificateAuthority.CA_KEY));
      return 0;
    }
  }

  @Command(name = "issue", description = "Issue (or renew) one identity's certificate from the CA "
      + "in DIR: 'operator', 'monitor' (metrics only) or 'site:<name>'.")
  static final class Issue implements Callable<Integer> {
    @Option(names = "--dir", required = true, description = "folder holding the CA")
    Path dir;

    @Parameters(index = "0", description = "identity: operator, monitor, worker or site:<name>")
    String identity;

    @Option(names = "--host", description = "DNS name or IP address it is reached at; repeat")
    List<String> hosts = new ArrayList<>();

    @Option(names = "--days", description = "validity in days (default: "
        + "825)")
    Integer days;

    @Override
    public Integer call() throws Exception {
      Identity id = Identity.parse(identity);
      CertificateAuthority ca = CertificateAuthority.open(dir);
      Duration validity = days == null ? CertificateAuthority.DEFAULT_VALIDITY
          : Duration.ofDays(days);
      if (validity.isNegative() || validity.isZero() || validity.toDays() > 3650) {
        throw new IllegalArgumentException("--days must be 1 to 3650");
      }
      Instant now = Instant.now();
      print(ca.issue(id, hosts, now.minus(Duration.ofMinutes(5)), now.plus(validity)), id);
      return 0;
    }
  }

  @Command(name = "nbd-client", description = "Lay out an identity's certificate for NBD clients "
      + "that speak TLS (qemu, nbdinfo, nbdcopy): OUT/ca-cert.pem, client-cert.pem, "
      + "client-key.pem. Use with an agent started with --nbd-tls.")
  static final class NbdClient implements Callable<Integer> {
    @Option(names = "--dir", required = true, description = "folder holding the certificates")
    Path dir;

    @Option(names = "--out", required = true, description = "folder to write")
    Path out;

    @Option(names = "--identity", defaultValue = "operator", description = "operator, or the "
        + "agent's own site:<name> (default: ${DEFAULT-VALUE})")
    String identity;

    @Override
    public Integer call() throws Exception {
      CertificateAuthority.writeX509ClientDir(dir, Identity.parse(identity), out);
      System.out.printf("wrote %s (ca-cert.pem, client-cert.pem, client-key.pem); e.g.%n"
          + "  nbdinfo 'nbds://127.0.0.1:10809/web01/disk0?tls-certificates=%s'%n", out, out);
      return 0;
    }
  }

  private static void print(Path cert, Identity id) {
    String key = cert.getFileName().toString().replace(".pem", "-key.pem");
    System.out.printf("issued %-18s %s (key %s)%n", id, cert, cert.resolveSibling(key));
  }
}
