package io.siterecovery.workers.cli;

import com.fasterxml.jackson.databind.JsonNode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.StopSignal;
import io.siterecovery.workers.boot.WorkerApplication;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;
import org.springframework.context.ConfigurableApplicationContext;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/**
 * Starts the Spring Boot worker ({@link WorkerApplication}). What is given here, and what the
 * configuration file named here says, wins over the environment and application.yml.
 */
@Command(name = "worker", description = "Run a worker against any Temporal server "
    + "(e.g. `temporal server start-dev`); agents are reached at the configured sites. Health and "
    + "metrics: https://127.0.0.1:8790/actuator/{health/readiness,prometheus} (monitor or "
    + "operator certificate).")
final class WorkerCommand implements Callable<Integer> {
  @Mixin
  TemporalOptions options;

  @Option(names = "--http-port", description = "port of the health and metrics endpoint "
      + "(default: WORKER_HTTP_PORT, else 8790; 0 picks a free one)")
  Integer httpPort;

  @Option(names = "--http-address", description = "address it listens on "
      + "(default: WORKER_HTTP_ADDRESS, else 127.0.0.1)")
  String httpAddress;

  @Override
  public Integer call() throws Exception {
    try (StopSignal stop = StopSignal.install("worker", StopSignal.DEFAULT_BOUND);
        ConfigurableApplicationContext worker = WorkerApplication.start(properties())) {
      stop.await();
    }
    return 0;
  }

  Map<String, String> properties() throws IOException {
    Map<String, String> properties = new LinkedHashMap<>();
    Path file = options.config != null ? options.config : fromEnvironment("SITE_RECOVERY_CONFIG");
    if (file != null) {
      SiteRecoveryConfig.load(file); // a broken file is named here, before Spring starts
      properties.put("site-recovery.config-file", file.toAbsolutePath().toString());
      JsonNode given = Json.MAPPER.readTree(file.toFile());
      putIfGiven(properties, "spring.temporal.connection.target", given.path("temporal"));
      putIfGiven(properties, "spring.temporal.namespace", given.path("namespace"));
      putIfGiven(properties, "site-recovery.certs", given.path("certs"));
    }
    putIfSet(properties, "spring.temporal.connection.target", options.temporal);
    putIfSet(properties, "spring.temporal.namespace", options.namespace);
    putIfSet(properties, "site-recovery.certs", options.certs);
    putIfSet(properties, "spring.temporal.connection.mtls.cert-chain-file", options.tlsCert);
    putIfSet(properties, "spring.temporal.connection.mtls.key-file", options.tlsKey);
    putIfSet(properties, "site-recovery.temporal-server-ca", options.tlsCa);
    putIfSet(properties, "server.port", httpPort);
    putIfSet(properties, "server.address", httpAddress);
    return properties;
  }

  private static Path fromEnvironment(String name) {
    String value = System.getenv(name);
    return value == null || value.isBlank() ? null : Path.of(value);
  }

  private static void putIfGiven(Map<String, String> properties, String key, JsonNode value) {
    if (value.isTextual()) {
      properties.put(key, value.asText());
    }
  }

  private static void putIfSet(Map<String, String> properties, String key, Object value) {
    if (value != null) {
      properties.put(key, value.toString());
    }
  }
}
