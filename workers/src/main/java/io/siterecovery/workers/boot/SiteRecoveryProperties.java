package io.siterecovery.workers.boot;

import io.siterecovery.agent.security.Identity;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import org.springframework.boot.context.properties.ConfigurationProperties;
import org.springframework.validation.Errors;
import org.springframework.validation.Validator;

/**
 * The worker's own configuration, {@code site-recovery.*} in application.yml, the environment
 * ({@code SITE_RECOVERY_CONFIG} and {@code SITE_RECOVERY_CERTS}, named in application.yml; the
 * rest in Spring's form, {@code SITERECOVERY_SITES_PRIMARY}...)
 * or the command line. {@code temporalServerCa}: the CA of the Temporal frontend's certificate when
 * it is not one the JVM trusts (see {@link TemporalTls}). {@code configFile} is the JSON file the
 * CLI reads too (sites, partners, policies, plans, object stores; its policies and plans are
 * re-read when it changes); a value set here wins over the file's. {@code objectStores}: the
 * object-store sites, each also in {@code sites} with its recovery host's URL. Checked as it
 * binds: a bad value stops the worker with the key named.
 */
@ConfigurationProperties("site-recovery")
public record SiteRecoveryProperties(Path configFile, Path certs, Path temporalServerCa,
    Map<String, String> sites,
    Map<String, String> partners, Map<String, SiteRecoveryConfig.Policy> policies,
    Map<String, SiteRecoveryConfig.Plan> plans,
    Map<String, SiteRecoveryConfig.ObjectStore> objectStores) implements Validator {

  public SiteRecoveryProperties {
    // SITE_RECOVERY_CONFIG unset leaves application.yml's placeholder empty: no file.
    configFile = configFile == null || configFile.toString().isEmpty() ? null : configFile;
    sites = sites == null ? Map.of() : Map.copyOf(sites);
    partners = partners == null ? Map.of() : Map.copyOf(partners);
    policies = policies == null ? Map.of() : new LinkedHashMap<>(policies);
    plans = plans == null ? Map.of() : new LinkedHashMap<>(plans);
    objectStores = objectStores == null ? Map.of() : new LinkedHashMap<>(objectStores);
  }

  /** The certificate the workers serve their health and metrics endpoint with. */
  static final String WORKER_CERT = Identity.worker().fileStem() + ".pem";

  @Override
  public boolean supports(Class<?> type) {
    return SiteRecoveryProperties.class.isAssignableFrom(type);
  }

  @Override
  public void validate(Object target, Errors errors) {
    SiteRecoveryProperties p = (SiteRecoveryProperties) target;
    if (p.temporalServerCa != null && !Files.isReadable(p.temporalServerCa)) {
      errors.rejectValue("temporalServerCa", "missing", "no readable file at " + p.temporalServerCa);
    }
    if (p.configFile != null && !Files.isReadable(p.configFile)) {
      errors.rejectValue("configFile", "missing", "no readable file at " + p.configFile);
    }
    if (p.certs == null || !Files.isReadable(p.certs.resolve("ca.pem"))) {
      errors.rejectValue("certs", "missing", "no ca.pem in " + p.certs
          + " (create the deployment's certificates with `site-recovery certs init --dir DIR`)");
    } else if (!Files.isReadable(p.certs.resolve(WORKER_CERT))) {
      errors.rejectValue("certs", "missing", "no " + WORKER_CERT + " in " + p.certs
          + " (issue it with `site-recovery certs issue --dir " + p.certs + " worker`)");
    }
    p.sites.forEach((site, url) -> {
      if (!isHttpsUrl(url)) {
        errors.rejectValue("sites[" + site + "]", "url",
            "must be the https URL of the site's agent, e.g. https://10.0.0.5:8701");
      }
    });
    p.partners.forEach((site, partner) -> {
      if (!p.sites.isEmpty() && !p.sites.containsKey(partner)) {
        errors.rejectValue("partners[" + site + "]", "unknown",
            "names no site of site-recovery.sites " + p.sites.keySet());
      }
    });
    p.objectStores.forEach((name, store) -> {
      if (store == null || blank(store.endpoint()) || blank(store.bucket())) {
        errors.rejectValue("objectStores[" + name + "]", "incomplete",
            "needs endpoint and bucket (prefix and key-id as the agents' site files have them)");
      } else if (!p.sites.isEmpty() && !p.sites.containsKey(name)) {
        errors.rejectValue("objectStores[" + name + "]", "unknown",
            "needs its recovery host's agent URL in site-recovery.sites " + p.sites.keySet());
      }
    });
    p.policies.forEach((name, policy) -> {
      try {
        SiteRecoveryConfig.validatePolicies(Map.of(name, policy));
      } catch (IllegalArgumentException e) {
        errors.rejectValue("policies[" + name + "]", "invalid", e.getMessage());
      }
    });
    p.plans.forEach((name, plan) -> {
      try {
        SiteRecoveryConfig.validatePlans(Map.of(name, plan));
      } catch (IllegalArgumentException e) {
        errors.rejectValue("plans[" + name + "]", "invalid", e.getMessage());
      }
    });
  }

  private static boolean blank(String value) {
    return value == null || value.isBlank();
  }

  private static boolean isHttpsUrl(String url) {
    try {
      URI uri = URI.create(url);
      return "https".equals(uri.getScheme()) && uri.getHost() != null;
    } catch (IllegalArgumentException e) {
      return false;
    }
  }
}
