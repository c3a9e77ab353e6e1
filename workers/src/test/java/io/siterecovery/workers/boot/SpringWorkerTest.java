package io.siterecovery.workers.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.security.CertificateAuthority;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import io.siterecovery.workers.Eventually;
import io.siterecovery.workers.dev.FreePorts;
import io.siterecovery.workers.dev.WorkerRunner;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.testserver.TestServer;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.boot.web.context.WebServerApplicationContext;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The worker as operators run it: the Spring Boot application on Temporal's starter, against a
 * Temporal server and two real agents, checked from outside: curl with the deployment's
 * certificates for health and metrics, a ProtectVm run that only this worker can execute.
 */
class SpringWorkerTest {
  private static final long MIB = 1 << 20;

  @TempDir
  Path dir;

  @Test
  void protectsAVmAndReportsReadinessAndMetricsToTheMonitorOnly() throws Exception {
    assumeTrue(onPath("curl"), "curl is not installed");
    Path certs = dir.resolve("certs");
    CertificateAuthority.provision(certs, "test", List.of(Identity.site("primary"),
        Identity.site("secondary"), Identity.operator(), Identity.monitor(), Identity.worker()));
    int temporalPort = FreePorts.next();
    try (TestServer.PortBoundTestServer temporal =
            TestServer.createPortBoundServer(temporalPort, true);
        HostAgent primary = agent("primary", certs);
        HostAgent secondary = agent("secondary", certs)) {
      primary.addPeer("secondary", secondary.url());
      secondary.addPeer("primary", primary.url());
      Path config = Files.writeString(dir.resolve("sites.json"), Json.MAPPER.writeValueAsString(
          Map.of("sites", Map.of("primary", primary.url(), "secondary", secondary.url()),
              "partners", Map.of("primary", "secondary", "secondary", "primary"),
              "certs", certs.toString(),
              "policies", Map.of("default", Map.of("copyFrequency", "PT2S")))));
      Map<String, String> properties = new LinkedHashMap<>();
      properties.put("site-recovery.config-file", config.toString());
      properties.put("site-recovery.certs", certs.toString());
      properties.put("spring.temporal.connection.target", "127.0.0.1:" + temporalPort);
      properties.put("server.port", "0");
      try (ConfigurableApplicationContext worker = WorkerApplication.start(properties)) {
        String base = "https://127.0.0.1:"
            + ((WebServerApplicationContext) worker).getWebServer().getPort();

        Curl ready = curl(certs, "monitor", base + "/actuator/health/readiness");
        assertThat(ready.status()).as(ready.body()).isEqualTo(200);
        assertThat(Json.MAPPER.readTree(ready.body()).at("/components/temporalWorker/status")
            .asText()).isEqualTo("UP");
        assertThat(Json.MAPPER.readTree(ready.body()).at("/components/agents/details/secondary")
            .asText()).isEqualTo("UP");

        // Only this worker polls the queue: PROTECTED proves the starter registered our
        // workflows and activity beans, with our data converter.
        new AgentClient(primary.url(), TlsCredentials.load(certs, Identity.operator()),
            Identity.site("primary")).createVm("web01", List.of(8 * MIB));
        WorkflowServiceStubs service = WorkerRunner.connect("127.0.0.1:" + temporalPort);
        try {
          WorkflowClient client = WorkerRunner.client(service, "default");
          ProtectVmWorkflow protection = client.newWorkflowStub(ProtectVmWorkflow.class,
              WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
                  .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
          WorkflowClient.start(protection::protect, new ProtectVmInput("web01", "default"));
          Eventually.await(() -> protection.status().state() == ProtectionState.PROTECTED);
        } finally {
          service.shutdownNow();
        }

        // The Temporal SDK's own metrics, which the SiteRecoveryWorkerNotPolling alert reads; its
        // counters reach the registry at the SDK's next report (every 10 s).
        Eventually.await(Duration.ofSeconds(30), () -> {
          Curl metrics = curl(certs, "monitor", base + "/actuator/prometheus");
          // The names the ops/ files use (agent's OpsFilesTest lists the same).
          return metrics.status() == 200 && Stream.of(
              "temporal_workflow_task_queue_poll_succeed_total",
              "temporal_activity_execution_latency_seconds_bucket",
              "temporal_workflow_task_execution_latency_seconds_bucket")
              .allMatch(metrics.body()::contains);
        });
        assertThat(curl(certs, "operator", base + "/actuator/health").status()).isEqualTo(200);

        Curl agentCert = curl(certs, "site-primary", base + "/actuator/prometheus");
        assertThat(agentCert.status()).isEqualTo(403);
        assertThat(agentCert.body()).contains("site:primary may not read");
        assertThat(curl(certs, null, base + "/actuator/health").status())
            .as("no client certificate: no TLS session").isZero();

        secondary.close();
        Curl notReady = curl(certs, "monitor", base + "/actuator/health/readiness");
        assertThat(notReady.status()).isEqualTo(503);
        assertThat(Json.MAPPER.readTree(notReady.body()).at("/components/agents/details/secondary")
            .asText()).startsWith("DOWN");
        assertThat(curl(certs, "monitor", base + "/actuator/health/liveness").status())
            .isEqualTo(200);
      }
    }
  }

  @Test
  void aBadSettingStopsTheWorkerNamingItsKey() throws Exception {
    Path certs = dir.resolve("certs");
    CertificateAuthority.provision(certs, "test", List.of(Identity.operator(), Identity.worker()));
    Map<String, String> properties = new LinkedHashMap<>();
    properties.put("site-recovery.certs", certs.toString());
    properties.put("site-recovery.sites.primary", "https://127.0.0.1:1");
    properties.put("site-recovery.sites.secondary", "http://127.0.0.1:2");
    properties.put("site-recovery.partners.primary", "tertiary");
    properties.put("site-recovery.policies.gold.copy-frequency", "PT0S");
    properties.put("spring.temporal.connection.target", "127.0.0.1:" + FreePorts.next());
    properties.put("server.port", "0");
    assertThatThrownBy(() -> WorkerApplication.start(properties).close())
        .satisfies(e -> assertThat(messages(e))
            .contains("site-recovery.sites[secondary]", "must be the https URL")
            .contains("site-recovery.partners[primary]", "names no site")
            .contains("site-recovery.policies[gold]", "copyFrequency"));
  }

  @Test
  void aMissingWorkerCertificateIsNamedWithTheCommandThatIssuesIt() throws Exception {
    Path certs = dir.resolve("certs");
    CertificateAuthority.provision(certs, "test", List.of(Identity.operator()));
    Map<String, String> properties = Map.of("site-recovery.certs", certs.toString(),
        "spring.temporal.connection.target", "127.0.0.1:" + FreePorts.next(), "server.port", "0");
    assertThatThrownBy(() -> WorkerApplication.start(properties).close())
        .satisfies(e -> assertThat(messages(e)).contains("site-recovery.certs")
            .contains("certs issue --dir " + certs + " worker"));
  }

  private static String messages(Throwable e) {
    StringBuilder all = new StringBuilder();
    for (Throwable t = e; t != null; t = t.getCause()) {
      all.append(t.getMessage()).append('\n');
    }
    return all.toString();
  }

  private HostAgent agent(String site, Path certs) throws IOException {
    return new HostAgent(new HostAgent.Settings(site, dir.resolve(site), "127.0.0.1", 0, 0,
        TlsCredentials.load(certs, Identity.site(site)), Map.of()));
  }

  record Curl(int status, String body) {}

  /** curl, a client we did not write; status 0 when no HTTP answer came at all. */
  private static Curl curl(Path certs, String identity, String url) {
    List<String> command = new ArrayList<>(List.of("curl", "-sS", "--max-time", "20",
        "--cacert", certs.resolve("ca.pem").toString(), "-w", "\n%{http_code}"));
    if (identity != null) {
      command.addAll(List.of("--cert", certs.resolve(identity + ".pem").toString(),
          "--key", certs.resolve(identity + "-key.pem").toString()));
    }
    command.add(url);
    String out;
    try {
      Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
      out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
    int cut = out.lastIndexOf('\n');
    String code = out.substring(cut + 1).trim();
    return new Curl(code.matches("\\d+") ? Integer.parseInt(code) : 0,
        cut < 0 ? "" : out.substring(0, cut));
  }

  private static boolean onPath(String tool) {
    return List.of(System.getenv("PATH").split(":")).stream()
        .anyMatch(d -> Files.isExecutable(Path.of(d, tool)));
  }

}
