package io.siterecovery.workers.config;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.activities.ResyncWindow;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import java.io.UncheckedIOException;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalTime;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Worker and CLI configuration: where Temporal is, each site's agent (https URL), which site
 * replicates to which, the replication policies, and {@code certs}: the folder with the
 * deployment's {@code ca.pem} and the operator's {@code operator.pem}/{@code operator-key.pem}.
 * {@link #dev()} is the embedded default.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record SiteRecoveryConfig(String temporal, String namespace, Map<String, String> sites,
    Map<String, String> partners, Map<String, Policy> policies, String certs) {

  /** Where {@code dev} keeps its data, and so its certificates, unless told otherwise. */
  public static final Path DEV_DATA = Path.of(".site-recovery", "dev");
  public static final String CERTS_DIR = "certs";

  /**
   * A named policy; durations in ISO-8601 form ("PT30S"), times as "22:00". Missing fields take
   * the defaults of {@link #DEFAULT_POLICY}; {@code initialReplicationStart} is an instant
   * ("2026-11-24T22:00:00Z") or absent for "now"; {@code appConsistentFrequency} absent = never;
   * {@code maxTestDuration}: how long a test failover may live before it cleans itself up.
   */
  public record Policy(Duration copyFrequency, Duration rpoThreshold, Duration retention,
      Duration appConsistentFrequency, Instant initialReplicationStart, Window resyncWindow,
      Boolean compression, Double bandwidthMBps, Duration maxTestDuration) {}

  /** Daily resync window; an end before the start spans midnight. */
  public record Window(LocalTime start, LocalTime end, String timeZone) {}

  public static final Policy DEFAULT_POLICY = new Policy(Duration.ofSeconds(30),
      Duration.ofMinutes(2), Duration.ofHours(24), null, null,
      new Window(LocalTime.of(22, 0), LocalTime.of(6, 0), "UTC"), false, null,
      PolicySettings.DEFAULT_MAX_TEST_DURATION);

  public static final int DEV_TEMPORAL_PORT = 7233;
  public static final int DEV_PRIMARY_HTTP = 8701;
  public static final int DEV_SECONDARY_HTTP = 8702;
  public static final int DEV_PRIMARY_NBD = 10809;
  public static final int DEV_SECONDARY_NBD = 10810;

  public static SiteRecoveryConfig dev() {
    return dev(DEV_TEMPORAL_PORT, DEV_PRIMARY_HTTP, DEV_SECONDARY_HTTP);
  }

  public static SiteRecoveryConfig dev(int temporalPort, int primaryHttp, int secondaryHttp) {
    return dev(temporalPort, primaryHttp, secondaryHttp, DEV_DATA.resolve(CERTS_DIR));
  }

  public static SiteRecoveryConfig dev(int temporalPort, int primaryHttp, int secondaryHttp,
      Path certs) {
    Map<String, String> sites = new LinkedHashMap<>();
    sites.put("primary", "https://127.0.0.1:" + primaryHttp);
    sites.put("secondary", "https://127.0.0.1:" + secondaryHttp);
    return new SiteRecoveryConfig("127.0.0.1:" + temporalPort, "default", sites,
        Map.of("primary", "secondary", "secondary", "primary"),
        Map.of("default", DEFAULT_POLICY), certs.toString());
  }

  /** The worker's and CLI's TLS identity towards the agents. */
  public TlsCredentials operatorCredentials() {
    try {
      return TlsCredentials.load(Path.of(certs), Identity.operator());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot load the operator's certificate: " + e.getMessage()
          + " (set \"certs\" in the configuration or pass --certs DIR)", e);
    }
  }

  public static SiteRecoveryConfig load(Path file) throws IOException {
    SiteRecoveryConfig c = Json.MAPPER.readValue(file.toFile(), SiteRecoveryConfig.class);
    SiteRecoveryConfig d = dev();
    return new SiteRecoveryConfig(c.temporal != null ? c.temporal : d.temporal,
        c.namespace != null ? c.namespace : d.namespace, c.sites != null ? c.sites : d.sites,
        c.partners != null ? c.partners : d.partners, c.policies != null ? c.policies : d.policies,
        c.certs != null ? c.certs : d.certs);
  }

  public SiteRecoveryConfig withPolicies(Map<String, Policy> more) {
    Map<String, Policy> all = new LinkedHashMap<>(policies);
    all.putAll(more);
    return new SiteRecoveryConfig(temporal, namespace, sites, partners, all, certs);
  }

  public SiteRecoveryConfig withCerts(Path dir) {
    return dir == null ? this
        : new SiteRecoveryConfig(temporal, namespace, sites, partners, policies, dir.toString());
  }

  public SiteRecoveryConfig withTemporal(String address, String ns) {
    return new SiteRecoveryConfig(address != null ? address : temporal,
        ns != null ? ns : namespace, sites, partners, policies, certs);
  }

  public Map<String, PolicySettings> policySettings() {
    Map<String, PolicySettings> out = new LinkedHashMap<>();
    policies.forEach((name, p) -> out.put(name, settings(name, p)));
    return out;
  }

  private static PolicySettings settings(String name, Policy p) {
    Policy d = DEFAULT_POLICY;
    Window w = p.resyncWindow() != null ? p.resyncWindow() : d.resyncWindow();
    return new PolicySettings(name,
        p.copyFrequency() != null ? p.copyFrequency() : d.copyFrequency(),
        p.rpoThreshold() != null ? p.rpoThreshold() : d.rpoThreshold(),
        p.retention() != null ? p.retention() : d.retention(),
        p.appConsistentFrequency(),
        p.initialReplicationStart(),
        new ResyncWindow(w.start(), w.end(), w.timeZone() != null ? w.timeZone() : "UTC"),
        p.compression() != null ? p.compression() : d.compression(),
        p.bandwidthMBps(),
        p.maxTestDuration() != null ? p.maxTestDuration() : d.maxTestDuration());
  }
}
