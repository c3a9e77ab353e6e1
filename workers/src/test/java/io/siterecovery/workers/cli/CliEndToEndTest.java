package io.siterecovery.workers.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.workers.dev.DevStack;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.StreamSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CLI against the embedded stack, as an operator runs it: protect --watch until PROTECTED,
 * then status of every VM, as a table and as JSON.
 */
class CliEndToEndTest {
  private static final long MIB = 1 << 20;

  @TempDir
  Path data;

  @Test
  void protectWatchEndsWhenProtectedAndStatusShowsEveryVm() throws Exception {
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0))) {
      Path config = data.resolve("site-recovery.json");
      Files.writeString(config, Json.MAPPER.writeValueAsString(Map.of("temporal",
          stack.config().temporal(), "sites", stack.config().sites(), "certs",
          stack.config().certs())));
      String cfg = config.toString();
      AgentClient primary = stack.operatorClient(stack.primary());
      primary.createVm("web01", List.of(8 * MIB));
      primary.createVm("db01", List.of(4 * MIB));
      primary.createVm("app01", List.of(MIB));

      CliRun web = CliRun.of("protect", "web01", "--watch", "--config", cfg);
      assertThat(web.exit()).as(web.out() + web.err()).isZero();
      List<String> lines = web.out().lines().toList();
      assertThat(lines.get(0)).startsWith("started protect-web01");
      assertThat(lines).anyMatch(l -> l.matches("  \\S+Z initial copy done: .*"))
          .contains("state PROTECTED");
      assertThat(lines.get(lines.size() - 1)).startsWith("  latest point rp-");
      assertThat(web.out()).as("not a terminal: plain lines").doesNotContain("\r", "\u001b");

      CliRun db = CliRun.of("protect", "db01", "--watch", "--output", "json", "--config", cfg);
      assertThat(db.exit()).as(db.err()).isZero();
      assertThat(Json.MAPPER.readTree(db.out()).get("state").asText()).isEqualTo("PROTECTED");
      assertThat(db.err()).contains("state PROTECTED");

      CliRun table = CliRun.of("status", "--config", cfg);
      assertThat(table.exit()).as(table.err()).isZero();
      List<String> rows = table.out().lines().toList();
      assertThat(rows.get(0)).matches("VM +SITE +STATE +HEALTH +RPO +LATEST POINT +NEXT CYCLE");
      assertThat(rows).hasSize(4);
      assertThat(rows.get(1)).matches("app01 +primary +UNPROTECTED +- +- +- +-");
      assertThat(rows.get(3)).matches("web01 +primary->secondary +PROTECTED +NORMAL +\\d+ s +"
          + "rp-\\d+ \\(\\d+ s ago\\) +(in \\d+ s|due now)");

      CliRun asJson = CliRun.of("status", "--output", "json", "--config", cfg);
      assertThat(asJson.exit()).as(asJson.err()).isZero();
      JsonNode vms = Json.MAPPER.readTree(asJson.out()).get("vms");
      assertThat(StreamSupport.stream(vms.spliterator(), false)
          .map(v -> v.get("vm").asText() + " " + v.get("state").asText()))
          .containsExactly("app01 UNPROTECTED", "db01 PROTECTED", "web01 PROTECTED");
      assertThat(vms.get(2).get("targetSite").asText()).isEqualTo("secondary");
      assertThat(vms.get(2).get("nextCycleAt").asText()).endsWith("Z");

      CliRun list = CliRun.of("vm", "list", "--output", "json", "--config", cfg);
      assertThat(list.exit()).as(list.err()).isZero();
      assertThat(StreamSupport.stream(Json.MAPPER.readTree(list.out()).spliterator(), false)
          .map(v -> v.get("site").asText() + " " + v.get("vm").get("name").asText() + " "
              + v.get("vm").get("role").asText()))
          .contains("primary web01 PRIMARY", "secondary web01 REPLICA", "primary app01 PRIMARY");
    }
  }
}
