package io.siterecovery.workers.boot;

import io.siterecovery.activities.PlanDefinition;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.workers.config.ConfigFile;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What the worker runs with: the JSON configuration file if one is named (its policies and plans
 * re-read when it changes, as the CLI's worker always did), else the embedded default's sites,
 * with every {@code site-recovery.*} property set in application.yml, the environment or the
 * command line laid over it.
 */
final class WorkerSettings {
  private final ConfigFile file;
  private final SiteRecoveryConfig config;
  private final SiteRecoveryConfig overrides;

  WorkerSettings(SiteRecoveryProperties properties) {
    try {
      this.file = properties.configFile() == null ? null : new ConfigFile(properties.configFile());
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + properties.configFile(), e);
    }
    SiteRecoveryConfig base = file != null ? file.config() : SiteRecoveryConfig.dev();
    this.overrides = new SiteRecoveryConfig(null, null, properties.sites(), properties.partners(),
        properties.policies(), null, properties.plans());
    this.config = base.withSites(properties.sites(), properties.partners())
        .withObjectStores(Map.of(), Map.of(), properties.objectStores())
        .withPolicies(properties.policies()).withPlans(plans(base, properties))
        .withCerts(properties.certs());
  }

  private static Map<String, SiteRecoveryConfig.Plan> plans(SiteRecoveryConfig base,
      SiteRecoveryProperties properties) {
    Map<String, SiteRecoveryConfig.Plan> all = new LinkedHashMap<>(base.plans() == null
        ? Map.of() : base.plans());
    all.putAll(properties.plans());
    return all;
  }

  SiteRecoveryConfig config() {
    return config;
  }

  Map<String, PolicySettings> policies() {
    Map<String, PolicySettings> all = new LinkedHashMap<>(
        file != null ? file.policies() : config.policySettings());
    all.putAll(overrides.policySettings());
    return all;
  }

  Map<String, PlanDefinition> plans() {
    Map<String, PlanDefinition> all = new LinkedHashMap<>(
        file != null ? file.plans() : config.planDefinitions());
    all.putAll(overrides.planDefinitions());
    return all;
  }
}
