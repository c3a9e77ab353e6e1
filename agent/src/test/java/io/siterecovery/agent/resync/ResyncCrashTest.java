package io.siterecovery.agent.resync;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.AgentProcess;
import io.siterecovery.agent.testing.Divergence;
import io.siterecovery.agent.testing.ResyncRun;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The source agent killed with SIGKILL between two resync steps, while a guest keeps writing:
 * after the restart, begin returns the same generation, the steps resume at the caller's block
 * cursor (the activity's heartbeat), and the replica ends byte-identical to the source.
 */
class ResyncCrashTest {
  private static final long MIB = 1L << 20;
  private static final long SIZE = 16 * MIB;
  private static final int BLOCK = 64 << 10;
  private static final long BLOCKS = SIZE / BLOCK;

  @TempDir Path tmp;
  private HostAgent secondary;
  private AgentProcess source;
  private Path data;

  @BeforeEach
  void start() throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    secondary = AgentPair.start("secondary", tmp.resolve("secondary"));
    data = tmp.resolve("primary");
    source = AgentProcess.start("primary", data, List.of(),
        java.util.Map.of("secondary", secondary.url()));
  }

  @AfterEach
  void stop() throws Exception {
    try {
      if (source != null) {
        source.close();
      }
    } finally {
      if (secondary != null) {
        secondary.close();
      }
    }
  }

  private String sourceImage() {
    return data.resolve("vms/web01/disk0.img").toString();
  }

  private String replicaImage() {
    return secondary.diskImage("web01", "disk0").toString();
  }

  @Test
  void aResyncKilledBetweenStepsResumesFromTheBlockCursor() throws Exception {
    AgentClient p = source.client();
    p.createVm("web01", List.of(SIZE));
    p.enableProtection("web01", "secondary");
    byte[] random = new byte[(int) SIZE];
    new Random(21).nextBytes(random);
    Path file = Files.write(tmp.resolve("random.bin"), random);
    qemuIo(source.nbdUri("web01", "disk0"), "write -s " + file + " 0 16M").assertOk();
    for (long at = 0; at < SIZE; at = p.copyRange("web01", "disk0", at, 4 * MIB).nextOffset()) {
      // copy
    }
    p.replicate("web01");
    p.completeInitialReplication("web01");
    compareRaw(sourceImage(), replicaImage()).assertOk();

    Random rnd = new Random(22);
    TreeSet<Long> damaged = Divergence.pickBlocks(rnd, BLOCKS, 24);
    Divergence.inject(Path.of(replicaImage()), damaged, BLOCK, rnd);
    long g = p.beginResync("web01").generation();

    // three steps of 32 blocks, a guest writing behind and ahead of the cursor after each
    String nbd = source.nbdUri("web01", "disk0");
    ResyncRun.Totals before = ResyncRun.steps(p, "web01", "disk0", 0, 32, 0, null, 3, cursor ->
        qemuIo(nbd, "write -P 0x4" + cursor % 10 + " " + (cursor * BLOCK - 8192) + " 4k",
            "write -P 0x5" + cursor % 10 + " " + (cursor * BLOCK + 3 * MIB) + " 12k", "flush")
            .assertOk());
    long cursor = before.cursor();
    assertThat(cursor).isEqualTo(96);
    Path vmDir = data.resolve("vms/web01");
    Long seed = ResyncLedger.load(vmDir).seed();
    assertThat(seed).as("drawn at begin").isNotNull();

    source.kill();
    assertThat(secondary.diskImage("web01", "disk0").resolveSibling("resync.json")).exists();
    source = AgentProcess.start("primary", data, List.of(),
        java.util.Map.of("secondary", secondary.url()));
    p = source.client();

    assertThat(p.beginResync("web01").generation()).as("the same resync").isEqualTo(g);
    assertThat(ResyncLedger.load(vmDir).seed()).as("the same digest key").isEqualTo(seed);
    assertThat(p.sourceStatus("web01").resyncRequiredReason())
        .as("a crash of the agent is no change behind its back").isNull();
    qemuIo(source.nbdUri("web01", "disk0"), "write -P 0x61 0 4k").assertOk(); // behind, again
    ResyncRun.Totals after = ResyncRun.disk(p, "web01", "disk0", cursor, 32, 0, null, null);
    assertThat(after.blocksCompared()).as("resumed, not restarted").isEqualTo(BLOCKS - cursor);
    assertThat(before.blocksDiffering() + after.blocksDiffering())
        .as("the damaged blocks, and those written ahead of the cursor")
        .isGreaterThanOrEqualTo(damaged.size());

    assertThat(ResyncLedger.load(vmDir).seed()).as("the steps kept the key").isEqualTo(seed);
    assertThat(p.completeResync("web01").replica().appliedGeneration()).isEqualTo(g);
    assertThat(p.replicate("web01").appliedGeneration()).isEqualTo(g + 1);
    compareRaw(sourceImage(), replicaImage()).assertOk();
  }
}
