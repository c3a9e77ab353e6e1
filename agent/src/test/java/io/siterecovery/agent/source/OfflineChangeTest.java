package io.siterecovery.agent.source;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.AgentProcess;
import io.siterecovery.agent.testing.ResyncRun;
import io.siterecovery.agent.testing.Tools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A protected disk image written while its agent was down (by another program, straight into the
 * file) is reported in {@code resyncRequiredReason} when the agent starts again, after a kill -9 as
 * after a clean stop; restarting without such a write reports nothing. A resync clears it.
 */
class OfflineChangeTest {
  private static final long MIB = 1L << 20;
  private static final long SIZE = 8 * MIB;

  @TempDir Path tmp;
  private HostAgent secondary;
  private Path data;

  @BeforeEach
  void start() throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    secondary = AgentPair.start("secondary", tmp.resolve("secondary"));
    data = tmp.resolve("primary");
  }

  @AfterEach
  void stop() throws IOException {
    if (secondary != null) {
      secondary.close();
    }
  }

  private Path image() {
    return data.resolve("vms/web01/disk0.img");
  }

  private static void protectAndReplicate(AgentClient p, String nbd) {
    p.createVm("web01", List.of(SIZE));
    p.enableProtection("web01", "secondary");
    qemuIo(nbd, "write -P 0x11 0 1M", "write -P 0x12 5M 64k").assertOk();
    p.copyRange("web01", "disk0", 0, SIZE);
    p.replicate("web01");
    p.completeInitialReplication("web01");
  }

  /** Another program writes the image file directly, as a second hypervisor would. */
  private void writeBehindTheAgentsBack(String command) {
    Tools.run("qemu-io", "-f", "raw", "-c", command, image().toString()).assertOk();
  }

  /**
   * After a crash the check compares the image's change time with the newest log's modification
   * time plus a slack; a write behind the agent's back must come later than that, so the test
   * waits for the file system's clock to pass it (a wait for time itself, bounded).
   */
  private void waitPastTheCrashSlack() throws IOException, InterruptedException {
    long newestLog;
    try (Stream<Path> files = Files.list(image().getParent())) {
      newestLog = files.filter(f -> f.toString().endsWith(".hrl"))
          .mapToLong(f -> lastModified(f).toMillis()).max().orElseThrow();
    }
    long until = newestLog + OfflineChanges.CRASH_SLACK_MILLIS + 50;
    Path probe = tmp.resolve("clock-probe");
    long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
    while (true) {
      Files.write(probe, new byte[1]);
      if (lastModified(probe).toMillis() > until) {
        return;
      }
      assertThat(System.nanoTime()).as("file system clock passes the slack").isLessThan(deadline);
      Thread.sleep(Math.max(10, Math.min(200, until - lastModified(probe).toMillis())));
    }
  }

  private static FileTime lastModified(Path f) {
    try {
      return Files.getLastModifiedTime(f);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  @Test
  void afterAKill9OnlyAWriteBehindTheAgentsBackIsReported() throws Exception {
    AgentProcess agent = AgentProcess.start("primary", data, List.of(),
        java.util.Map.of("secondary", secondary.url()));
    try {
      AgentClient p = agent.client();
      protectAndReplicate(p, agent.nbdUri("web01", "disk0"));
      qemuIo(agent.nbdUri("web01", "disk0"), "write -P 0x13 2M 4k").assertOk();
      agent.kill(); // the agent's last write was moments ago

      agent = AgentProcess.start("primary", data, List.of(),
        java.util.Map.of("secondary", secondary.url()));
      p = agent.client();
      assertThat(p.sourceStatus("web01").resyncRequiredReason())
          .as("a crash of the agent itself is no false positive").isNull();

      agent.kill();
      waitPastTheCrashSlack();
      writeBehindTheAgentsBack("write -P 0x66 3M 4k");
      agent = AgentProcess.start("primary", data, List.of(),
        java.util.Map.of("secondary", secondary.url()));
      p = agent.client();
      String reason = p.sourceStatus("web01").resyncRequiredReason();
      assertThat(reason).contains("modified while the agent was down").contains("disk0")
          .contains("had not stopped cleanly");
      assertThat(agent.output()).contains("needs a resync");

      // the resync carries the untracked write over and clears the reason
      p.beginResync("web01");
      ResyncRun.Totals t = ResyncRun.disk(p, "web01", "disk0", 0, 1000, 0, null, null);
      // the untracked write at 3M, and the tracked one at 2M whose log begin discarded
      assertThat(t.blocksDiffering()).isEqualTo(2);
      p.completeResync("web01");
      assertThat(p.sourceStatus("web01").resyncRequiredReason()).isNull();
      p.replicate("web01");
      compareRaw(image().toString(), secondary.diskImage("web01", "disk0").toString()).assertOk();
    } finally {
      agent.close();
    }
  }

  @Test
  void afterACleanStopAnyChangeToTheImageIsReported() throws Exception {
    HostAgent primary = AgentPair.start("primary", data);
    try {
      primary.addPeer("secondary", secondary.url());
      AgentClient p = TestCerts.operatorClient(primary);
      protectAndReplicate(p, primary.nbdUri("web01", "disk0"));
      primary.close();
      assertThat(image().resolveSibling("clean-shutdown.json")).exists();

      primary = AgentPair.start("primary", data);
      primary.addPeer("secondary", secondary.url());
      p = TestCerts.operatorClient(primary);
      assertThat(p.sourceStatus("web01").resyncRequiredReason()).as("nothing changed").isNull();
      assertThat(image().resolveSibling("clean-shutdown.json"))
          .as("used once, so it never describes an older run").doesNotExist();
      qemuIo(primary.nbdUri("web01", "disk0"), "write -P 0x21 1M 4k").assertOk();
      primary.close();

      // a write that even puts the modification time back: the change time still tells
      FileTime mtime = Files.getLastModifiedTime(image());
      writeBehindTheAgentsBack("write -P 0x67 6M 4k");
      Files.setLastModifiedTime(image(), mtime);
      primary = AgentPair.start("primary", data);
      primary.addPeer("secondary", secondary.url());
      p = TestCerts.operatorClient(primary);
      String reason = p.sourceStatus("web01").resyncRequiredReason();
      assertThat(reason).contains("modified while the agent was down")
          .contains("disk0 changed since the agent stopped cleanly").contains("changed ");
    } finally {
      primary.close();
    }
  }
}
