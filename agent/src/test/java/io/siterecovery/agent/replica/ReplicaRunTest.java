package io.siterecovery.agent.replica;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentMessages.PromoteResult;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.Tools;
import io.siterecovery.agent.vm.VmRecord;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A replica started after a failover runs on layers: checked with {@code qemu-img compare}
 * against copies of the source taken at each point, and against the replica's own image, which
 * must not change until a commit.
 */
class ReplicaRunTest {
  private static final long MIB = 1L << 20;
  private static final long DISK = 16 * MIB;
  private static final String VM = "web01";

  @TempDir Path tmp;
  private AgentPair agents;
  private final Map<Long, Path> sourceAt = new HashMap<>();

  @BeforeEach
  void start() throws IOException {
    agents = AgentPair.start(tmp);
    agents.createProtected(VM, DISK);
    agents.initialCopy(VM, "disk0", DISK, 4 * MIB, null);
    agents.p.replicate(VM);
    agents.p.completeInitialReplication(VM);
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  private String replicaUri() {
    return agents.secondary.nbdUri(VM, "disk0");
  }

  /** Writes a pattern on the source, runs one cycle and keeps a copy of the source at it. */
  private long cycle(int pattern, int offsetMiB, int lengthMiB) throws IOException {
    qemuIo(agents.primary.nbdUri(VM, "disk0"),
        "write -P " + pattern + " " + offsetMiB + "M " + lengthMiB + "M").assertOk();
    long g = agents.p.replicate(VM).appliedGeneration();
    Path copy = tmp.resolve("source-at-" + g + ".img");
    Files.copy(Path.of(agents.primaryImage(VM, "disk0")), copy,
        StandardCopyOption.REPLACE_EXISTING);
    sourceAt.put(g, copy);
    return g;
  }

  @Test
  void anOlderThenANewerPointRunWhileTheReplicaStaysWhereItWas() throws IOException {
    assumeInstalled("qemu-img", "qemu-io");
    long older = cycle(0x11, 0, 4);
    cycle(0x22, 2, 4);
    long newest = cycle(0x33, 3, 2);
    Path replica = Path.of(agents.replicaImage(VM, "disk0"));
    Path before = tmp.resolve("replica-before.img");
    Files.copy(replica, before);

    agents.p.setPower(VM, VmRecord.Power.OFF);
    agents.s.startReplica(VM, older, "failover-1");
    compareRaw(sourceAt.get(older).toString(), replicaUri()).assertOk();
    qemuIo(replicaUri(), "write -P 0x77 8M 2M").assertOk();
    assertThat(agents.s.startReplica(VM, older, "failover-1").power())
        .as("a retried start").isEqualTo(VmRecord.Power.RUNNING);
    assertThatThrownBy(() -> agents.s.startReplica(VM, newest, "failover-2"))
        .isInstanceOfSatisfying(AgentException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE))
        .hasMessageContaining("already runs");
    compareRaw(before.toString(), replica.toString()).assertOk();

    agents.s.stopReplica(VM);
    qemuIo(replicaUri(), "read 0 4k").assertFailed();
    agents.s.startReplica(VM, newest, "failover-2");
    compareRaw(sourceAt.get(newest).toString(), replicaUri()).assertOk();
    agents.s.stopReplica(VM);
    compareRaw(before.toString(), replica.toString()).assertOk();

    // cancelled: the source runs again and the replica follows it with no resync
    agents.p.setPower(VM, VmRecord.Power.RUNNING);
    long next = cycle(0x44, 6, 1);
    assertThat(next).isEqualTo(newest + 1);
    compareRaw(agents.primaryImage(VM, "disk0"), replica.toString()).assertOk();
  }

  @Test
  void aCommitMergesTheRunningLayersAndKeepsWhatChangedForReverseReplication()
      throws IOException {
    assumeInstalled("qemu-img", "qemu-io");
    long point = cycle(0x11, 0, 4);
    cycle(0x22, 2, 4); // the point is older: 2-6 MiB differ from it
    agents.p.setPower(VM, VmRecord.Power.OFF);
    agents.s.startReplica(VM, point, "failover-1");
    qemuIo(replicaUri(), "write -P 0x77 10M 1M").assertOk();
    Path seen = tmp.resolve("seen.img");
    Tools.run("qemu-img", "convert", "-f", "raw", "-O", "raw", replicaUri(), seen.toString())
        .assertOk();

    PromoteResult promoted = agents.s.promoteReplica(VM);
    assertThat(promoted.reverseTarget()).isEqualTo("primary");
    assertThat(promoted.changedBytes()).as("2-6 MiB back to the point, and 10-11 MiB written")
        .isEqualTo(5 * MIB);
    assertThat(agents.s.promoteReplica(VM)).as("a retried commit").isEqualTo(promoted);
    compareRaw(seen.toString(), agents.replicaImage(VM, "disk0")).assertOk();
    VmRecord record = agents.s.getVm(VM);
    assertThat(record.role()).isEqualTo(VmRecord.Role.PRIMARY);
    assertThat(record.power()).isEqualTo(VmRecord.Power.RUNNING);
    assertThat(record.home()).isEqualTo("primary");
    assertThat(record.protection().targetSite()).isEqualTo("primary");
    assertThat(agents.secondary.vms().dataDir().resolve("vms/web01/undo")).doesNotExist();

    // from the commit on, the VM's writes are tracked for reverse replication
    qemuIo(replicaUri(), "write -P 0x78 12M 1M", "read -P 0x77 10M 1M").assertOk();
    assertThat(agents.s.sourceStatus(VM).pendingBytes()).isGreaterThanOrEqualTo(MIB);
  }

  @Test
  void aRunningReplicaAndItsWritesSurviveARestartOfItsAgent() throws IOException {
    assumeInstalled("qemu-img", "qemu-io");
    long point = cycle(0x11, 0, 4);
    cycle(0x22, 0, 2);
    agents.p.setPower(VM, VmRecord.Power.OFF);
    agents.s.startReplica(VM, point, "failover-1");
    qemuIo(replicaUri(), "write -P 0x77 8M 1M", "flush").assertOk();

    Path dir = agents.secondary.vms().dataDir();
    agents.secondary.close();
    HostAgent restarted = AgentPair.start("secondary", dir);
    try {
      String uri = restarted.nbdUri(VM, "disk0");
      qemuIo(uri, "read -P 0x77 8M 1M", "read -P 0x11 0 4M").assertOk();
    } finally {
      restarted.close();
    }
  }
}
