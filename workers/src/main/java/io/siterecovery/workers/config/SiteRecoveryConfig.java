package io.siterecovery.workers.config;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.siterecovery.activities.PlanDefinition;
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
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Worker and CLI configuration: where Temporal is, each site's agent (https URL), which site
 * replicates to which, the replication policies, and {@code certs}: the folder with the
 * deployment's {@code ca.pem} and the operator's {@code operator.pem}/{@code operator-key.pem}.
 * {@link #dev()} is the embedded default.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record SiteRecoveryConfig(String temporal, String namespace, Map<String, String> sites,
    Map<String, String> partners, Map<String, Policy> policies, String certs,
    Map<String, Plan> plans, Map<String, ObjectStore> objectStores) {

  public SiteRecoveryConfig(String temporal, String namespace, Map<String, String> sites,
      Map<String, String> partners, Map<String, Policy> policies, String certs,
      Map<String, Plan> plans) {
    this(temporal, namespace, sites, partners, policies, certs, plans, null);
  }

  /**
   * A site that is an S3-compatible bucket ({@code "objectStores": {"cloud": {...}}}); the same
   * name in {@code sites} is its recovery host's agent. The worker checks that every agent
   * shipping to it means this bucket: {@code endpoint}, {@code bucket}, {@code prefix} and the
   * key-encryption key's fingerprint {@code keyId} (each optional). The credentials and the key
   * itself are in each agent's own site file, never here: they never cross the network.
   */
  public record ObjectStore(String endpoint, String bucket, String prefix, String keyId) {}

  /** The object-store sites, none when the configuration names none. */
  public Map<String, ObjectStore> objectStoreSites() {
    return objectStores == null ? Map.of() : objectStores;
  }

  /** The object-store sites as the activities check them. */
  public Map<String, io.siterecovery.activities.SiteDirectory.ObjectStore> objectStoreDirectory() {
    Map<String, io.siterecovery.activities.SiteDirectory.ObjectStore> out = new LinkedHashMap<>();
    objectStoreSites().forEach((name, o) -> out.put(name,
        new io.siterecovery.activities.SiteDirectory.ObjectStore(o.endpoint(), o.bucket(),
            o.prefix(), o.keyId())));
    return out;
  }

  /** Every object-store site needs its recovery host among the sites. */
  static Map<String, ObjectStore> validateObjectStores(Map<String, ObjectStore> stores,
      Map<String, String> sites) {
    if (stores == null) {
      return null;
    }
    stores.forEach((name, o) -> {
      requireName("objectStores", name);
      if (o == null) {
        throw new IllegalArgumentException("objectStores." + name + ": empty");
      }
      if (!sites.containsKey(name)) {
        throw new IllegalArgumentException("objectStores." + name + ": site '" + name
            + "' needs its recovery host's agent URL in \"sites\"");
      }
    });
    return Map.copyOf(stores);
  }

  /**
   * A recovery plan: {@code {"groups":[{"name":"db","vms":["db01"],"before":[...],
   * "after":[{"script":"check-db"},{"manual":"confirm DB is open","timeout":"PT1H"}]}],
   * "concurrency":10}}. An action may name the operations it runs for
   * ({@code "operations":["TEST_FAILOVER"]}).
   */
  public record Plan(List<Group> groups, Integer concurrency) {}

  public record Group(String name, List<String> vms, List<Action> before, List<Action> after) {}

  public record Action(String script, String manual, Duration timeout, List<String> operations) {}

  /** What a plan's action may be limited to: the RecoveryPlan operations. */
  public static final Set<String> PLAN_OPERATIONS = Set.of("VALIDATE", "TEST_FAILOVER",
      "PLANNED_FAILOVER", "UNPLANNED_FAILOVER", "REPROTECT", "FAILBACK");

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
  public static final String DEV_CLOUD_SITE = "cloud";
  public static final int DEV_CLOUD_HTTP = 8703;
  public static final int DEV_CLOUD_NBD = 10811;
  public static final int DEV_CLOUD_S3 = 8704;

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
    // dev's bucket and its recovery host; which bucket is the agents' to say (DevStack fills in
    // what the worker checks)
    sites.put(DEV_CLOUD_SITE, "https://127.0.0.1:" + DEV_CLOUD_HTTP);
    return new SiteRecoveryConfig("127.0.0.1:" + temporalPort, "default", sites,
        Map.of("primary", "secondary", "secondary", "primary"),
        Map.of("default", DEFAULT_POLICY), certs.toString(), Map.of(),
        Map.of(DEV_CLOUD_SITE, new ObjectStore(null, null, null, null)));
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
        c.partners != null ? c.partners : d.partners,
        validatePolicies(c.policies != null ? c.policies : d.policies),
        c.certs != null ? c.certs : d.certs, validatePlans(c.plans),
        c.sites != null ? validateObjectStores(c.objectStores, c.sites) : d.objectStores);
  }

  /** A policy a workflow could not use is a configuration error at load, naming policy and field. */
  public static Map<String, Policy> validatePolicies(Map<String, Policy> policies) {
    policies.forEach((name, p) -> {
      if (p == null) {
        throw new IllegalArgumentException("policy '" + name + "': empty");
      }
      settings(name, p).validated();
    });
    return policies;
  }

  public SiteRecoveryConfig withPolicies(Map<String, Policy> more) {
    Map<String, Policy> all = new LinkedHashMap<>(policies);
    all.putAll(validatePolicies(more));
    return new SiteRecoveryConfig(temporal, namespace, sites, partners, all, certs, plans,
        objectStores);
  }

  public SiteRecoveryConfig withCerts(Path dir) {
    return dir == null ? this
        : new SiteRecoveryConfig(temporal, namespace, sites, partners, policies, dir.toString(),
            plans, objectStores);
  }

  /** The same configuration with these sites and partners, where given (not empty). */
  public SiteRecoveryConfig withSites(Map<String, String> moreSites,
      Map<String, String> morePartners) {
    // object-store sites stay only where their recovery host is still among the sites
    Map<String, ObjectStore> stores = new LinkedHashMap<>(objectStoreSites());
    if (!moreSites.isEmpty()) {
      stores.keySet().retainAll(moreSites.keySet());
    }
    return new SiteRecoveryConfig(temporal, namespace, moreSites.isEmpty() ? sites : moreSites,
        morePartners.isEmpty() ? partners : morePartners, policies, certs, plans, stores);
  }

  public SiteRecoveryConfig withTemporal(String address, String ns) {
    return new SiteRecoveryConfig(address != null ? address : temporal,
        ns != null ? ns : namespace, sites, partners, policies, certs, plans, objectStores);
  }

  /** The same configuration with these sites, partners and object-store sites (dev's cloud). */
  public SiteRecoveryConfig withObjectStores(Map<String, String> moreSites,
      Map<String, String> morePartners, Map<String, ObjectStore> stores) {
    Map<String, String> allSites = new LinkedHashMap<>(sites);
    allSites.putAll(moreSites);
    Map<String, String> allPartners = new LinkedHashMap<>(partners);
    allPartners.putAll(morePartners);
    Map<String, ObjectStore> allStores = new LinkedHashMap<>(objectStoreSites());
    allStores.putAll(stores);
    return new SiteRecoveryConfig(temporal, namespace, allSites, allPartners, policies, certs,
        plans, validateObjectStores(allStores, allSites));
  }

  /** The same configuration with these plans (dev's embedded stack with a --config file's). */
  public SiteRecoveryConfig withPlans(Map<String, Plan> more) {
    return new SiteRecoveryConfig(temporal, namespace, sites, partners, policies, certs,
        validatePlans(more), objectStores);
  }

  /**
   * Checks every plan as it loads, naming the first problem: a plan needs groups with names and
   * VMs, a VM is in at most one group of a plan, an action is a script or a manual step with
   * valid names and bounds. Whether the VMs exist and are protected is VALIDATE's to report.
   */
  public static Map<String, Plan> validatePlans(Map<String, Plan> plans) {
    if (plans == null) {
      return Map.of();
    }
    for (Map.Entry<String, Plan> e : plans.entrySet()) {
      String where = "plan '" + e.getKey() + "'";
      requireName(where, e.getKey());
      Plan plan = e.getValue();
      if (plan == null || plan.groups() == null || plan.groups().isEmpty()) {
        throw new IllegalArgumentException(where + ": \"groups\" is required and not empty");
      }
      if (plan.concurrency() != null && (plan.concurrency() < 1 || plan.concurrency() > 1000)) {
        throw new IllegalArgumentException(where + ": \"concurrency\" must be 1 to 1000");
      }
      Map<String, String> groupOf = new LinkedHashMap<>();
      Set<String> groupNames = new java.util.HashSet<>();
      for (int i = 0; i < plan.groups().size(); i++) {
        Group g = plan.groups().get(i);
        String at = where + ", groups[" + i + "]";
        if (g == null || g.name() == null) {
          throw new IllegalArgumentException(at + ": \"name\" is required");
        }
        requireName(at, g.name());
        if (!groupNames.add(g.name())) {
          throw new IllegalArgumentException(at + ": a second group named '" + g.name() + "'");
        }
        if (g.vms() == null || g.vms().isEmpty()) {
          throw new IllegalArgumentException(at + " (" + g.name() + "): \"vms\" is required");
        }
        for (String vm : g.vms()) {
          requireName(at + " (" + g.name() + ")", vm);
          String before = groupOf.put(vm, g.name());
          if (before != null) {
            throw new IllegalArgumentException(where + ": VM " + vm + " is named twice (groups '"
                + before + "' and '" + g.name() + "'); a VM is in at most one group of a plan");
          }
        }
        validateActions(at + " (" + g.name() + ") before", g.before());
        validateActions(at + " (" + g.name() + ") after", g.after());
      }
    }
    return Map.copyOf(plans);
  }

  private static void validateActions(String where, List<Action> actions) {
    if (actions == null) {
      return;
    }
    for (int i = 0; i < actions.size(); i++) {
      Action a = actions.get(i);
      String at = where + "[" + i + "]";
      if (a == null || (a.script() == null) == (a.manual() == null)) {
        throw new IllegalArgumentException(at + ": an action is either {\"script\":\"name\"} or"
            + " {\"manual\":\"what to confirm\"}");
      }
      if (a.script() != null) {
        requireName(at, a.script());
      } else if (a.manual().isBlank() || a.manual().length() > 200) {
        throw new IllegalArgumentException(at + ": a manual step needs 1 to 200 characters");
      }
      if (a.timeout() != null && (a.timeout().isNegative() || a.timeout().isZero()
          || a.timeout().compareTo(Duration.ofDays(30)) > 0)) {
        throw new IllegalArgumentException(at + ": \"timeout\" must be above zero and at most"
            + " 30 days");
      }
      if (a.operations() != null) {
        for (String op : a.operations()) {
          if (!PLAN_OPERATIONS.contains(op)) {
            throw new IllegalArgumentException(at + ": unknown operation '" + op + "'; one of "
                + PLAN_OPERATIONS.stream().sorted().toList());
          }
        }
      }
    }
  }

  private static void requireName(String where, String name) {
    if (name == null || !name.matches("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}") || name.contains("..")) {
      throw new IllegalArgumentException(where + ": '" + name + "' is not a valid name (letters,"
          + " digits, '.', '_', '-')");
    }
  }

  /** The plans as the workflows see them. */
  public Map<String, PlanDefinition> planDefinitions() {
    Map<String, PlanDefinition> out = new LinkedHashMap<>();
    (plans == null ? Map.<String, Plan>of() : plans).forEach((name, p) -> out.put(name,
        new PlanDefinition(name, p.groups().stream().map(g -> new PlanDefinition.Group(g.name(),
            List.copyOf(g.vms()), actions(g.before()), actions(g.after()))).toList(),
            p.concurrency() != null ? p.concurrency() : PlanDefinition.DEFAULT_CONCURRENCY)));
    return out;
  }

  private static List<PlanDefinition.Action> actions(List<Action> actions) {
    return actions == null ? List.of() : actions.stream().map(a -> new PlanDefinition.Action(
        a.script(), a.manual(), a.timeout(), a.operations() == null ? List.of()
            : List.copyOf(a.operations()))).toList();
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
