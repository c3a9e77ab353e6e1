package io.siterecovery.workers.config;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.siterecovery.activities.AgentActivityRecords.PolicySettings;
import io.siterecovery.agent.Json;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Worker and CLI configuration: where Temporal is, each site's agent, which site replicates to
 * which, and the replication policies. {@link #dev()} is the embedded default.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record SiteRecoveryConfig(String temporal, String namespace, Map<String, String> sites,
    Map<String, String> partners, Map<String, Policy> policies) {

  /** A named policy; durations in ISO-8601 form, e.g. "PT30S". */
  public record Policy(Duration copyFrequency, Duration rpoThreshold) {}

  public static final int DEV_TEMPORAL_PORT = 7233;
  public static final int DEV_PRIMARY_HTTP = 8701;
  public static final int DEV_SECONDARY_HTTP = 8702;
  public static final int DEV_PRIMARY_NBD = 10809;
  public static final int DEV_SECONDARY_NBD = 10810;

  public static SiteRecoveryConfig dev() {
    return dev(DEV_TEMPORAL_PORT, DEV_PRIMARY_HTTP, DEV_SECONDARY_HTTP);
  }

  public static SiteRecoveryConfig dev(int temporalPort, int primaryHttp, int secondaryHttp) {
    Map<String, String> sites = new LinkedHashMap<>();
    sites.put("primary", "http://127.0.0.1:" + primaryHttp);
    sites.put("secondary", "http://127.0.0.1:" + secondaryHttp);
    return new SiteRecoveryConfig("127.0.0.1:" + temporalPort, "default", sites,
        Map.of("primary", "secondary", "secondary", "primary"),
        Map.of("default", new Policy(Duration.ofSeconds(30), Duration.ofMinutes(2))));
  }

  public static SiteRecoveryConfig load(Path file) throws IOException {
    SiteRecoveryConfig c = Json.MAPPER.readValue(file.toFile(), SiteRecoveryConfig.class);
    SiteRecoveryConfig d = dev();
    return new SiteRecoveryConfig(c.temporal != null ? c.temporal : d.temporal,
        c.namespace != null ? c.namespace : d.namespace, c.sites != null ? c.sites : d.sites,
        c.partners != null ? c.partners : d.partners, c.policies != null ? c.policies : d.policies);
  }

  public SiteRecoveryConfig withTemporal(String address, String ns) {
    return new SiteRecoveryConfig(address != null ? address : temporal,
        ns != null ? ns : namespace, sites, partners, policies);
  }

  public Map<String, PolicySettings> policySettings() {
    Map<String, PolicySettings> out = new LinkedHashMap<>();
    policies.forEach((name, p) -> out.put(name, new PolicySettings(name, p.copyFrequency(),
        p.rpoThreshold())));
    return out;
  }
}
