package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.Tools;
import io.siterecovery.agent.vm.VmRecord.Power;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The request that once stopped a VM's protection: one NBD WRITE whose offset + length
 * overflows. It used to be logged before failing, and every delta cycle after it failed on the
 * replica. Now it is refused before the change tracker sees it, and replication goes on; fio's
 * own checksums on the replica are the judge.
 */
class OverflowWriteReplicationTest {
  private static final long MIB = 1L << 20;
  private static final long DISK = 16 * MIB;

  @TempDir Path tmp;
  private AgentPair agents;

  @BeforeEach
  void start() throws Exception {
    agents = AgentPair.start(tmp);
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  private List<String> fio(String uri, String... extra) {
    List<String> cmd = new java.util.ArrayList<>(List.of("fio", "--name=overflow",
        "--ioengine=nbd", "--uri=" + uri, "--rw=randwrite", "--bs=4k", "--size=8M",
        "--iodepth=4", "--verify=crc32c", "--verify_state_save=0", "--randrepeat=1",
        "--randseed=7"));
    cmd.addAll(List.of(extra));
    return cmd;
  }

  @Test
  void anOverflowingWriteIsRefusedAndTheNextCyclesReplicateWhatFioWrote() throws Exception {
    assumeInstalled("fio");
    agents.createProtected("web01", DISK);
    agents.initialCopy("web01", "disk0", DISK, DISK, null);
    agents.p.replicate("web01");
    agents.p.completeInitialReplication("web01");
    String primaryUri = agents.primary.nbdUri("web01", "disk0");
    Duration timeout = Duration.ofSeconds(60);

    Tools.run(timeout, fio(primaryUri, "--do_verify=0"), tmp).assertOk();
    try (RawNbdClient raw = RawNbdClient.go(agents.primary.nbdPort(), "web01/disk0")) {
      RawNbdClient.Reply refused = raw.write(0, 0x7FFFFFFFFFFFF000L, 8192, 0x66);
      assertThat(refused.error()).as("the overflowing write is refused").isNotZero();
      assertThat(raw.read(0, 0, 4096).error()).as("the connection stays usable").isZero();
    }

    ReplicationResult next = agents.p.replicate("web01");
    assertThat(next.appliedGeneration()).as("the cycle after it applies").isEqualTo(2);
    ReplicationResult again = agents.p.replicate("web01");
    assertThat(again.appliedGeneration()).isEqualTo(3);
    assertThat(agents.p.sourceStatus("web01").resyncRequiredReason()).isNull();

    agents.p.setPower("web01", Power.OFF);
    agents.p.replicate("web01");
    agents.s.startReplica("web01", agents.s.getVm("web01").replica().appliedGeneration(), "failover");
    Tools.Result verified = Tools.run(timeout,
        fio(agents.secondary.nbdUri("web01", "disk0"), "--verify_only"), tmp).assertOk();
    assertThat(verified.output()).contains("READ:").doesNotContain("verify: bad");
  }
}
