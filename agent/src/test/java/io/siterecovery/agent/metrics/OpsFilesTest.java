package io.siterecovery.agent.metrics;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentMessages.ResyncStepRequest;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.Curl;
import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.testing.Tools;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The files in ops/ name only metrics that exist: every metric in an alert rule or a dashboard
 * query is in a running agent's GET /metrics (after replication through NBD, with a resync under
 * way, so that every series is there), except the worker's Temporal SDK metrics, which only the
 * worker's rule group may use (the worker's own test, SpringWorkerTest, finds them exported). And the dashboard
 * shows every metric family the agent exports. promtool, Prometheus's own checker, checks the
 * rules, their unit tests and the scrape configuration where it is installed.
 */
class OpsFilesTest {
  private static final Path OPS = Path.of("").toAbsolutePath().getParent().resolve("ops");
  private static final Path ALERTS = OPS.resolve("prometheus/alerts.yml");
  private static final Path DASHBOARD = OPS.resolve("grafana/site-recovery.json");
  /** The worker's Temporal SDK metrics (io.temporal.worker.MetricsType) the worker rules use. */
  private static final Set<String> WORKER_METRICS = Set.of(
      "temporal_workflow_task_queue_poll_succeed_total",
      "temporal_workflow_task_queue_poll_empty_total");
  /** Prometheus's own series for every target. */
  private static final Set<String> PROMETHEUS_METRICS = Set.of("up");
  private static final String WORKER_GROUP = "site-recovery-worker";
  private static final Set<String> NOT_METRICS = Set.of("and", "or", "unless", "bool", "offset",
      "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan");
  private static final long MIB = 1L << 20;

  @TempDir Path tmp;

  @Test
  void everyMetricTheAlertsAndTheDashboardNameIsExportedAndTheDashboardShowsThemAll()
      throws IOException {
    assumeInstalled("qemu-io", "curl");
    Set<String> exported = new TreeSet<>();
    Set<String> families = new TreeSet<>();
    try (AgentPair agents = AgentPair.start(tmp.resolve("agents"))) {
      agents.createProtected("web01", 4 * MIB);
      qemuIo(agents.primary.nbdUri("web01", "disk0"), "write -P 7 0 256k").assertOk();
      agents.initialCopy("web01", "disk0", 4 * MIB, 4 * MIB, null);
      agents.p.replicate("web01");
      agents.p.completeInitialReplication("web01");
      agents.p.beginResync("web01");
      agents.p.resyncStep("web01", "disk0", new ResyncStepRequest(0, 4, 0, null, null));
      for (var agent : List.of(agents.primary, agents.secondary)) {
        String text = metricsOf(agent);
        exported.addAll(Exposition.parse(text).names());
        text.lines().filter(l -> l.startsWith("# TYPE siterecovery_"))
            .forEach(l -> families.add(l.split(" ")[2]));
      }
    }
    assertThat(exported).contains("siterecovery_resync_done_bytes",
        "siterecovery_replica_rpo_seconds");

    Map<String, Set<String>> alertNames = new LinkedHashMap<>();
    Set<String> workerRuleNames = new TreeSet<>();
    JsonNode rules = new ObjectMapper(new YAMLFactory()).readTree(ALERTS.toFile());
    for (JsonNode group : rules.get("groups")) {
      for (JsonNode rule : group.get("rules")) {
        String name = rule.path("alert").asText(rule.path("record").asText());
        Set<String> used = metricNames(rule.get("expr").asText());
        assertThat(used).as("metrics of %s", name).isNotEmpty();
        alertNames.put(name, used);
        if (WORKER_GROUP.equals(group.get("name").asText())) {
          assertThat(rule.path("labels").path("depends_on").asText())
              .as("%s is marked as depending on the worker's metrics", name)
              .isEqualTo("worker-metrics");
          workerRuleNames.addAll(used);
        }
      }
    }
    assertThat(alertNames.keySet()).contains("SiteRecoveryRpoOverThreshold",
        "SiteRecoveryResyncRequired", "SiteRecoveryReplicationStalled",
        "SiteRecoveryUnshippedLogGrowing", "SiteRecoveryWorkerNotPolling");
    alertNames.forEach((alert, used) -> {
      for (String metric : used) {
        if (PROMETHEUS_METRICS.contains(metric)) {
          continue;
        }
        if (workerRuleNames.contains(metric) && WORKER_METRICS.contains(metric)) {
          continue;
        }
        assertThat(exported).as("%s names %s", alert, metric).contains(metric);
      }
    });
    assertThat(workerRuleNames).as("the worker rule reads the SDK's poll counters")
        .containsAll(WORKER_METRICS);

    JsonNode dashboard = new ObjectMapper().readTree(DASHBOARD.toFile());
    List<String> queries = new ArrayList<>();
    dashboard.findValues("expr").forEach(e -> queries.add(e.asText()));
    dashboard.path("templating").path("list").forEach(v -> {
      if (v.path("query").has("query")) {
        queries.add(v.path("query").path("query").asText());
      }
    });
    assertThat(queries).hasSizeGreaterThan(10);
    Set<String> shown = new TreeSet<>();
    for (String query : queries) {
      for (String metric : metricNames(query)) {
        assertThat(exported).as("the dashboard's query %s names %s", query, metric)
            .contains(metric);
        shown.add(metric);
      }
    }
    for (String family : families) {
      if (family.endsWith("_max") && families.contains(family.substring(0, family.length() - 4))) {
        continue; // a timer's recent maximum, shown with its timer
      }
      assertThat(shown).as("the dashboard shows %s", family)
          .anyMatch(m -> m.equals(family) || m.startsWith(family + "_"));
    }
  }

  @Test
  void promtoolAcceptsTheRulesTheirUnitTestsAndTheScrapeConfiguration() {
    assumeInstalled("promtool");
    Path prometheus = OPS.resolve("prometheus");
    Tools.run("promtool", "check", "rules", ALERTS.toString()).assertOk();
    Tools.run("promtool", "test", "rules", prometheus.resolve("alerts.test.yml").toString())
        .assertOk();
    // --syntax-only: the certificate files it names live on the Prometheus host, not here
    Tools.run("promtool", "check", "config", "--syntax-only",
        prometheus.resolve("prometheus.yml").toString()).assertOk();
  }

  @Test
  void metricNamesAreReadFromPromQlAsPrometheusWould() {
    assertThat(metricNames("sum by (vm, le) (rate(a_b_total{vm=~\"$vm\",x=\"y(z)\"}"
        + "[$__rate_interval])) / on (vm) group_left c:d offset 5m and bool e > 64 * 1024"))
        .containsExactlyInAnyOrder("a_b_total", "c:d", "e");
    assertThat(metricNames("label_values(siterecovery_nbd_bytes_total, site)"))
        .containsExactly("siterecovery_nbd_bytes_total");
  }

  private static String metricsOf(HostAgent agent) {
    List<String> args = new ArrayList<>(Curl.as(TestCerts.dir(), "operator"));
    args.add(agent.url() + "/metrics");
    Curl.Result result = Curl.run(args);
    assertThat(result.status()).as("%s", result).isEqualTo(200);
    return result.body();
  }

  /**
   * The metric names in a PromQL expression (or a Grafana label_values query): identifiers that
   * are not in a string, a label matcher, a range, a label list, a function call or a keyword.
   */
  static Set<String> metricNames(String expr) {
    String s = expr.replaceAll("\"(?:[^\"\\\\]|\\\\.)*\"", "\"\"")
        .replaceAll("label_values\\(\\s*([^,)]+),[^)]*\\)", "$1")
        .replaceAll("\\{[^}]*}", " ")
        .replaceAll("\\[[^]]*]", " ")
        .replaceAll("\\b(by|without|on|ignoring|group_left|group_right)\\s*\\([^)]*\\)", " ");
    Set<String> names = new TreeSet<>();
    Matcher m = Pattern.compile("(?<![\\w$.])([a-zA-Z_:][a-zA-Z0-9_:]*)(\\s*\\()?").matcher(s);
    while (m.find()) {
      if (m.group(2) == null && !NOT_METRICS.contains(m.group(1).toLowerCase())) {
        names.add(m.group(1));
      }
    }
    return names;
  }
}
