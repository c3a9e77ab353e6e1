package io.siterecovery.agent.security;

import java.security.cert.CertificateParsingException;
import java.security.cert.X509Certificate;
import java.util.Collection;
import java.util.List;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * Who a certificate speaks for: {@code operator} (the worker and the CLI), {@code monitor} (a
 * metrics scraper such as Prometheus: it may read {@code GET /metrics} and nothing else) or
 * {@code site:<name>} (that site's host agent) or {@code worker} (the certificate a worker serves its
 * health and metrics endpoint with; agents grant it nothing). It travels in the certificate as a URI subject
 * alternative name, {@code urn:site-recovery:<identity>}, so a certificate issued for anything
 * else by the same CA names no identity at all.
 */
public record Identity(String value) {
  public static final String URI_PREFIX = "urn:site-recovery:";
  private static final String SITE_PREFIX = "site:";
  private static final String OPERATOR = "operator";
  private static final String MONITOR = "monitor";
  private static final String WORKER = "worker";
  private static final Pattern SITE_NAME = Pattern.compile("[a-z0-9][a-z0-9-]{0,62}");
  private static final int SAN_URI = 6;

  public Identity {
    boolean site = value != null && value.startsWith(SITE_PREFIX)
        && SITE_NAME.matcher(value.substring(SITE_PREFIX.length())).matches();
    if (!OPERATOR.equals(value) && !MONITOR.equals(value) && !WORKER.equals(value) && !site) {
      throw new IllegalArgumentException("identity must be 'operator', 'monitor', 'worker' or"
          + " 'site:<name>'"
          + " with a site name of lower-case letters, digits and '-'; got '" + value + "'");
    }
  }

  public static Identity operator() {
    return new Identity(OPERATOR);
  }

  public static Identity monitor() {
    return new Identity(MONITOR);
  }

  public static Identity worker() {
    return new Identity(WORKER);
  }

  public static Identity site(String name) {
    return new Identity(SITE_PREFIX + name);
  }

  public static Identity parse(String value) {
    return new Identity(value);
  }

  public boolean isOperator() {
    return OPERATOR.equals(value);
  }

  /** The read-only scraper: its certificate opens {@code GET /metrics} and nothing else. */
  public boolean isMonitor() {
    return MONITOR.equals(value);
  }

  /** The worker's server identity for its health and metrics endpoint. */
  public boolean isWorker() {
    return WORKER.equals(value);
  }

  /** The site this identity is the agent of, or empty for the operator and the monitor. */
  public Optional<String> siteName() {
    return value.startsWith(SITE_PREFIX)
        ? Optional.of(value.substring(SITE_PREFIX.length())) : Optional.empty();
  }

  /** The stem of this identity's file names in a certificate directory: site-primary, operator. */
  public String fileStem() {
    return value.replace(':', '-');
  }

  public String sanUri() {
    return URI_PREFIX + value;
  }

  /** The identity a certificate names, if it names exactly one. */
  public static Optional<Identity> of(X509Certificate certificate) {
    try {
      Collection<List<?>> names = certificate.getSubjectAlternativeNames();
      if (names == null) {
        return Optional.empty();
      }
      List<Identity> found = names.stream()
          .filter(n -> n.size() == 2 && Integer.valueOf(SAN_URI).equals(n.get(0)))
          .map(n -> n.get(1).toString())
          .filter(uri -> uri.startsWith(URI_PREFIX))
          .map(uri -> {
            try {
              return new Identity(uri.substring(URI_PREFIX.length()));
            } catch (IllegalArgumentException e) {
              return null;
            }
          })
          .toList();
      return found.size() == 1 && found.get(0) != null ? Optional.of(found.get(0)) : Optional.empty();
    } catch (CertificateParsingException e) {
      return Optional.empty();
    }
  }

  @Override
  public String toString() {
    return value;
  }
}
