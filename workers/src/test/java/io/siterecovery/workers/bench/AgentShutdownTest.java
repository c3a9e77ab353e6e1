package io.siterecovery.workers.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.vm.VmRecord;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code site-recovery agent} stopped by SIGTERM exits only after it has flushed its disks and
 * written its clean-shutdown stamp, so its next start does not take a write made through NBD for
 * a change made while it was down (which would cost a resync).
 */
class AgentShutdownTest {
  private static final long MIB = 1L << 20;

  @TempDir Path dir;

  @Test
  void aStoppedAgentWritesItsCleanStampAndItsNextStartWantsNoResync() throws Exception {
    assumeTrue(ExternalTool.installed("qemu-io"), "qemu-io not installed");
    Path data = dir.resolve("primary");
    try (AgentProcess secondary = AgentProcess.startCommand("secondary",
        dir.resolve("secondary"), dir.resolve("secondary.log"), Map.of())) {
      Map<String, String> peers = Map.of("secondary", secondary.url());
      AgentProcess primary = AgentProcess.startCommand("primary", data,
          dir.resolve("primary.log"), peers);
      try {
        AgentClient client = LocalSites.operatorClient(primary.url(), "primary");
        client.createVm("web01", List.of(4 * MIB));
        client.enableProtection("web01", "secondary");
        client.setPower("web01", VmRecord.Power.RUNNING);
        ExternalTool.run(List.of("qemu-io", "-f", "raw", "-c", "write -P 0xab 0 1M",
            "nbd://127.0.0.1:" + primary.nbdPort + "/web01/disk0"));
        // Older than the crash heuristic's slack, so only the stamp can vouch for the image.
        Thread.sleep(2500);
      } finally {
        primary.close(); // SIGTERM
      }
      assertThat(primary.exitValue()).isNotEqualTo(137); // not killed after the 30 s wait
      try (Stream<Path> files = Files.walk(data)) {
        assertThat(files.filter(f -> f.getFileName().toString().equals("clean-shutdown.json")))
            .hasSize(1);
      }

      try (AgentProcess again = AgentProcess.startCommand("primary", data,
          dir.resolve("primary-again.log"), peers)) {
        AgentClient client = LocalSites.operatorClient(again.url(), "primary");
        assertThat(client.sourceStatus("web01").resyncRequiredReason()).isNull();
      }
    }
  }
}
