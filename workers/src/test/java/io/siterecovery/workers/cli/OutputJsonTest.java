package io.siterecovery.workers.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.siterecovery.agent.Json;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code --output json} against a Temporal server without a worker: stdout is one JSON document
 * and nothing else; an error is a line on stderr, nothing on stdout, and a non-zero exit.
 */
class OutputJsonTest {
  private WorkerlessServer server;

  @BeforeEach
  void startServer() throws IOException {
    server = new WorkerlessServer();
  }

  @AfterEach
  void stopServer() {
    server.close();
  }

  private JsonNode json(String... args) throws IOException {
    String[] all = java.util.stream.Stream.concat(java.util.Arrays.stream(args),
        java.util.stream.Stream.of("--output", "json", "--temporal", server.address))
        .toArray(String[]::new);
    CliRun run = CliRun.of(all);
    assertThat(run.exit()).as(run.err()).isZero();
    String out = run.out().strip();
    assertThat(out).as("one document, nothing around it").startsWith("{").endsWith("}");
    return Json.MAPPER.readTree(out);
  }

  @Test
  void startsAndSignalsAnswerWithTheWorkflowAndWhatWasSent() throws IOException {
    JsonNode started = json("failover", "web01", "--type", "TEST");
    assertThat(started.get("workflowId").asText()).isEqualTo("test-failover-web01");
    assertThat(started.get("action").asText()).isEqualTo("started");

    JsonNode cleanup = json("cleanup", "web01", "--notes", "orders page answered");
    assertThat(cleanup.get("action").asText()).isEqualTo("signal cleanup");
    assertThat(cleanup.get("detail").asText()).isEqualTo("orders page answered");

    json("failover", "db01");
    JsonNode commit = json("commit", "db01");
    assertThat(commit.get("workflowId").asText()).isEqualTo("failover-db01");
    assertThat(commit.get("action").asText()).isEqualTo("signal commit");
  }

  @Test
  void anErrorGoesToStderrWithNothingOnStdout() {
    CliRun run = CliRun.of("failover", "web01", "--max-test-duration", "PT8H", "--output",
        "json", "--temporal", server.address);
    assertThat(run.exit()).isEqualTo(2);
    assertThat(run.out()).isEmpty();
    assertThat(run.err()).startsWith("error: --max-test-duration goes with --type TEST");
  }

  @Test
  void startingWhatAlreadyRunsSaysSo() throws IOException {
    json("failover", "db01");
    CliRun again = CliRun.of("failover", "db01", "--output", "json", "--temporal", server.address);
    assertThat(again.exit()).isEqualTo(2);
    assertThat(again.out()).isEmpty();
    assertThat(again.err()).startsWith("error: failover-db01 already runs");
  }

  @Test
  void onlyTextAndJsonAreFormats() {
    CliRun run = CliRun.of("commit", "web01", "--output", "yaml", "--temporal", server.address);
    assertThat(run.exit()).isNotZero();
    assertThat(run.out()).isEmpty();
    assertThat(run.err()).contains("--output", "text, json");
  }

  @Test
  void aLocalVerbAnswersInJsonToo(@TempDir Path agentData) throws IOException {
    Files.createDirectories(agentData.resolve("vms").resolve("db01"));
    CliRun run = CliRun.of("vm", "quiesce-hook", "db01", "--data", agentData.toString(),
        "--output", "json", "--", "fsfreeze", "--freeze", "/var/lib/db");
    assertThat(run.exit()).as(run.err()).isZero();
    JsonNode hook = Json.MAPPER.readTree(run.out());
    assertThat(hook.get("vm").asText()).isEqualTo("db01");
    assertThat(hook.get("command").toString()).isEqualTo(
        "[\"fsfreeze\",\"--freeze\",\"/var/lib/db\"]");
    assertThat(hook.get("timeoutSeconds").asInt()).isEqualTo(30);
  }
}
