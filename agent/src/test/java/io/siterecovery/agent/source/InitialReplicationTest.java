package io.siterecovery.agent.source;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.api.AgentMessages.CopyRangeResult;
import io.siterecovery.agent.api.AgentMessages.ProtectionState;
import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.Tools;
import io.siterecovery.agent.vm.VmRecord.Power;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Initial replication with snapshot semantics: a disk copied range by range while a real NBD
 * client keeps writing ends up byte-identical on the replica once the tracked log is merged, as
 * judged by {@code qemu-img compare}.
 */
class InitialReplicationTest {
  private static final long MIB = 1L << 20;

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

  private Path randomFile(String name, int size, long seed) throws IOException {
    byte[] bytes = new byte[size];
    new Random(seed).nextBytes(bytes);
    return Files.write(tmp.resolve(name), bytes);
  }

  @Test
  void writesDuringTheCopyAreMergedSoTheReplicaEqualsTheSource() throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    long size0 = 32 * MIB;
    long size1 = 16 * MIB;
    agents.createProtected("web01", size0, size1);
    String disk0 = agents.primary.nbdUri("web01", "disk0");
    String disk1 = agents.primary.nbdUri("web01", "disk1");

    // the VM's data before the copy starts: random, with holes
    Path random = randomFile("random.bin", (int) (8 * MIB), 1);
    qemuIo(disk0, "write -s " + random + " 0 8M", "write -s " + random + " 16M 8M").assertOk();
    qemuIo(disk1, "write -s " + random + " 4M 8M").assertOk();

    // Copy 1 MiB at a time; after every step the guest writes behind the copy cursor (already
    // copied, so only the log can carry it), across it, ahead of it, zeroes and discards.
    Random rnd = new Random(2);
    long[] cursor = {0};
    long sent0 = agents.initialCopy("web01", "disk0", size0, MIB, () -> {
      long at = cursor[0] += MIB;
      List<String> cmds = new ArrayList<>();
      int pattern = 1 + rnd.nextInt(254);
      long behind = align(rnd.nextLong(at - 65536), 512);
      cmds.add("write -P " + pattern + " " + behind + " " + (512 + rnd.nextInt(64) * 512));
      if (at < size0) {
        cmds.add("write -P " + (pattern ^ 0xff) + " " + (at - 4096) + " 8192"); // across
        long ahead = at + align(rnd.nextLong(size0 - at - 4096), 4096);
        cmds.add("write -P " + ((pattern + 7) & 0xff) + " " + ahead + " 4096");
      }
      if (rnd.nextInt(4) == 0) {
        cmds.add("write -z " + align(rnd.nextLong(at - 65536), 4096) + " 65536");
      }
      if (rnd.nextInt(4) == 0) {
        cmds.add("discard " + align(rnd.nextLong(at - 65536), 4096) + " 16384");
      }
      qemuIo(disk0, cmds.toArray(String[]::new)).assertOk();
    });
    // a retried activity re-sends a range it already sent: harmless
    agents.p.copyRange("web01", "disk0", 4 * MIB, 2 * MIB);

    long sent1 = agents.initialCopy("web01", "disk1", size1, 4 * MIB, () ->
        qemuIo(disk1, "write -P 0x3c " + align(rnd.nextLong(size1 - 65536), 512) + " 64k")
            .assertOk());
    assertThat(sent0).isLessThanOrEqualTo(size0);
    assertThat(sent1).isLessThan(size1); // its holes were skipped

    // Control: without the log the replica is stale, so the oracle does see the difference.
    compareRaw(agents.primaryImage("web01", "disk0"), agents.replicaImage("web01", "disk0"))
        .assertFailed();

    ReplicationResult merged = agents.p.replicate("web01");
    assertThat(merged.appliedGeneration()).isEqualTo(1);
    assertThat(merged.lastSealedGeneration()).isEqualTo(1);
    assertThat(merged.logsShipped()).isEqualTo(2);
    ProtectionState done = agents.p.completeInitialReplication("web01");
    assertThat(done.initialComplete()).isTrue();
    assertThat(agents.s.getVm("web01").replica().initialComplete()).isTrue();

    assertIdentical("disk0");
    assertIdentical("disk1");

    // delta cycles keep them equal
    qemuIo(disk0, "write -P 0x99 5M 300k", "write -z 20M 1M", "discard 0 4k").assertOk();
    qemuIo(disk1, "write -f -P 0x98 15M 1M").assertOk();
    ReplicationResult delta = agents.p.replicate("web01");
    assertThat(delta.appliedGeneration()).isEqualTo(2);
    assertThat(agents.s.getVm("web01").replica().appliedGeneration()).isEqualTo(2);
    assertIdentical("disk0");
    assertIdentical("disk1");
    assertThat(agents.p.sourceStatus("web01").sealedLogs()).isZero();

    // and a cycle without writes ships empty logs and changes nothing
    assertThat(agents.p.replicate("web01").appliedGeneration()).isEqualTo(3);
    assertIdentical("disk0");

    // the replica, powered on, serves the same bytes over NBD as the source
    agents.s.startReplica("web01", agents.s.getVm("web01").replica().appliedGeneration(), "failover");
    compareRaw(disk0, agents.secondary.nbdUri("web01", "disk0")).assertOk();
  }

  @Test
  void aSparseDiskSendsOnlyItsDataAndStaysSparse() throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    long size = 64 * MIB;
    agents.createProtected("sparse", size);
    agents.createProtected("empty", size);
    qemuIo(agents.primary.nbdUri("sparse", "disk0"),
        "write -P 0x42 8M 1M", "write -P 0x43 40M 4k").assertOk();

    CopyRangeResult sparse = agents.p.copyRange("sparse", "disk0", 0, size);
    assertThat(sparse.nextOffset()).isEqualTo(size);
    assertThat(sparse.bytesRead()).isEqualTo(size);
    // 1 MiB + 4 KiB of data; whole copy chunks around it at most
    assertThat(sparse.bytesSent()).isBetween(MIB + 4096, 2 * MIB);

    CopyRangeResult empty = agents.p.copyRange("empty", "disk0", 0, size);
    assertThat(empty.nextOffset()).isEqualTo(size);
    assertThat(empty.bytesSent()).isZero();

    for (String vm : List.of("sparse", "empty")) {
      agents.p.replicate(vm);
      agents.p.completeInitialReplication(vm);
      compareRaw(agents.primaryImage(vm, "disk0"), agents.replicaImage(vm, "disk0")).assertOk();
    }
    assertThat(allocatedBytes(agents.secondary.diskImage("empty", "disk0"))).isLessThan(MIB);
    assertThat(allocatedBytes(agents.secondary.diskImage("sparse", "disk0"))).isLessThan(8 * MIB);
  }

  @Test
  void aCopyRangePastTheEndStopsAtTheEndOfTheDisk() {
    long size = 3 * MIB + 512;
    agents.createProtected("odd", size);
    CopyRangeResult r = agents.p.copyRange("odd", "disk0", 2 * MIB, 10 * MIB);
    assertThat(r.nextOffset()).isEqualTo(size);
    assertThat(r.bytesRead()).isEqualTo(MIB + 512);
  }

  private void assertIdentical(String disk) {
    compareRaw(agents.primaryImage("web01", disk), agents.replicaImage("web01", disk)).assertOk();
  }

  private static long align(long value, long to) {
    return value / to * to;
  }

  /** Blocks the file system really allocated, from coreutils' stat. */
  private static long allocatedBytes(Path file) {
    String out = Tools.run("stat", "-c", "%b %B", file.toString()).assertOk().output().trim();
    String[] parts = out.split("\\s+");
    return Long.parseLong(parts[0]) * Long.parseLong(parts[1]);
  }
}
