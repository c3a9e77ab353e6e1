package io.siterecovery.agent.source;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.ProcessOutput;
import io.siterecovery.agent.testing.Tools;
import io.siterecovery.agent.vm.VmRecord.Power;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * fio as the workload and the judge: it writes a checksummed pattern through the primary's NBD
 * export while the initial copy runs, and after failing over to the replica
 * {@code --verify_only} re-reads every block it wrote from the replica's NBD export.
 */
class FioReplicationTest {
  private static final long MIB = 1L << 20;
  private static final long DISK = 32 * MIB;

  @TempDir Path tmp;
  private AgentPair agents;

  @BeforeEach
  void start() throws IOException {
    agents = AgentPair.start(tmp);
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  /**
   * Two jobs (two NBD connections) of 12 MiB each, iodepth 8, every block written exactly once.
   * Pass A uses 4 KiB blocks and pass B 8 KiB blocks, so a verify of one pass fails on data of
   * the other: fio's crc32c headers record the block length.
   */
  private List<String> fio(String uri, String blockSize, String... extra) {
    List<String> cmd = new ArrayList<>(List.of("fio", "--name=dr", "--ioengine=nbd",
        "--uri=" + uri, "--rw=randwrite", "--bs=" + blockSize, "--size=12M", "--numjobs=2",
        "--offset_increment=12M", "--iodepth=8", "--verify=crc32c", "--verify_state_save=0",
        "--randrepeat=1", "--randseed=20240601", "--group_reporting"));
    cmd.addAll(List.of(extra));
    return cmd;
  }

  private Tools.Result fio(Duration timeout, List<String> command) {
    return Tools.run(timeout, command, tmp);
  }

  @Test
  void whatFioWroteOnThePrimaryVerifiesOnTheReplicaAfterFailover() throws Exception {
    assumeInstalled("fio", "qemu-img", "qemu-io");
    agents.createProtected("web01", DISK);
    String primaryUri = agents.primary.nbdUri("web01", "disk0");
    Duration timeout = Duration.ofSeconds(60);

    // pass A: fio writes while the initial copy runs
    Process writer = new ProcessBuilder(fio(primaryUri, "4k", "--do_verify=0"))
        .directory(tmp.toFile()).redirectErrorStream(true).start();
    ProcessOutput writerOutput = ProcessOutput.drain(writer);
    agents.initialCopy("web01", "disk0", DISK, 2 * MIB, null);
    assertThat(writer.waitFor(60, TimeUnit.SECONDS)).as("fio finished").isTrue();
    String written = writerOutput.awaitEnd(Duration.ofSeconds(10));
    assertThat(writer.exitValue()).as("fio writer%n%s", written).isZero();
    assertThat(written).contains("WRITE:");

    ReplicationResult merged = agents.p.replicate("web01");
    assertThat(merged.appliedGeneration()).isEqualTo(1);
    assertThat(merged.bytesShipped()).as("every fio write was tracked").isGreaterThan(24 * MIB);
    agents.p.completeInitialReplication("web01");
    fio(timeout, fio(primaryUri, "4k", "--verify_only")).assertOk(); // the oracle accepts the source

    // pass B overwrites every block; then a planned failover: primary off, last delta, replica up
    fio(timeout, fio(primaryUri, "8k", "--do_verify=0")).assertOk();
    agents.p.setPower("web01", Power.OFF);
    qemuIo(primaryUri, "read 0 4k").assertFailed();
    ReplicationResult last = agents.p.replicate("web01");
    assertThat(last.appliedGeneration()).isEqualTo(2);
    assertThat(last.bytesShipped()).isGreaterThan(24 * MIB);
    agents.s.startReplica("web01", agents.s.getVm("web01").replica().appliedGeneration(), "failover");
    String replicaUri = agents.secondary.nbdUri("web01", "disk0");

    Tools.Result verified = fio(timeout, fio(replicaUri, "8k", "--verify_only")).assertOk();
    assertThat(verified.output()).contains("READ:").doesNotContain("verify: bad");
    compareRaw(agents.primaryImage("web01", "disk0"), agents.replicaImage("web01", "disk0"))
        .assertOk();

    // the judge is not lenient: the replica no longer holds pass A, and verifying A says so
    Tools.Result stale = fio(timeout, fio(replicaUri, "4k", "--verify_only", "--verify_fatal=1"))
        .assertFailed();
    assertThat(stale.output()).contains("verify: bad");
  }
}
