package io.siterecovery.agent.testclone;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentMessages.ReplicateRequest;
import io.siterecovery.agent.api.AgentMessages.TestCleanupReport;
import io.siterecovery.agent.api.AgentMessages.TestCloneInfo;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.Tools;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Test VMs against independent oracles: {@code qemu-img compare} of the test VM's NBD export
 * with a copy of the source image taken at the point, while replication applies underneath;
 * {@code qemu-io} writing through the export; {@code nbdinfo --list} after cleanup.
 */
class TestCloneTest {
  private static final long MIB = 1L << 20;
  private static final long DISK = 16 * MIB;
  private static final String VM = "web01";

  @TempDir Path tmp;
  private AgentPair agents;

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

  private String primaryUri() {
    return agents.primary.nbdUri(VM, "disk0");
  }

  private String testUri() {
    return agents.secondary.nbdUri(VM + "-test", "disk0");
  }

  /** Writes {@code pattern} over {@code [offsetMiB, +lengthMiB)} on the source, then one cycle. */
  private long writeAndReplicate(int pattern, int offsetMiB, int lengthMiB) {
    qemuIo(primaryUri(), "write -P " + pattern + " " + offsetMiB + "M " + lengthMiB + "M")
        .assertOk();
    return agents.p.replicate(VM, new ReplicateRequest(null, false, null)).appliedGeneration();
  }

  private Path snapshotOfSource(String name) throws IOException {
    Path copy = tmp.resolve(name + ".img");
    Files.copy(Path.of(agents.primaryImage(VM, "disk0")), copy,
        StandardCopyOption.REPLACE_EXISTING);
    return copy;
  }

  @Test
  void theTestVmStaysAtItsPointWhileThreeCyclesApplyUnderneath() throws IOException {
    assumeInstalled("qemu-img", "qemu-io");
    long point = writeAndReplicate(0x11, 0, 6);
    Path atPoint = snapshotOfSource("at-point");

    TestCloneInfo clone = agents.s.createTestClone(VM, point, "drill-1");
    assertThat(clone.testVm()).isEqualTo("web01-test");
    assertThat(clone.exports()).containsExactly(testUri());
    assertThat(clone.scratchBytes()).as("made at the latest point: nothing copied").isZero();

    writeAndReplicate(0x22, 2, 4);
    writeAndReplicate(0x33, 5, 6);
    long applied = writeAndReplicate(0x44, 0, 1);
    assertThat(applied).isEqualTo(point + 3);
    compareRaw(agents.primaryImage(VM, "disk0"), agents.replicaImage(VM, "disk0")).assertOk();

    compareRaw(atPoint.toString(), testUri()).assertOk();
    compareRaw(agents.replicaImage(VM, "disk0"), testUri()).assertFailed();

    // the test VM writes; its writes stay in scratch, the replica keeps following the source
    qemuIo(testUri(), "write -P 0x77 12M 1M", "read -P 0x77 12M 1M", "read -P 0x11 0 1M")
        .assertOk();
    writeAndReplicate(0x55, 12, 1);
    compareRaw(agents.primaryImage(VM, "disk0"), agents.replicaImage(VM, "disk0")).assertOk();
    qemuIo(testUri(), "read -P 0x77 12M 1M").assertOk();
    assertThat(agents.s.testClones()).singleElement()
        .satisfies(c -> assertThat(c.scratchBytes())
            .as("the point's 0-1 and 2-11 MiB the replica overwrote, and the test's 12-13 MiB")
            .isEqualTo(11 * MIB));
  }

  @Test
  void aTestVmAtAnOlderPointIsRebuiltFromUndoDataWithoutCopyingTheDisk() throws IOException {
    assumeInstalled("qemu-img", "qemu-io");
    long older = writeAndReplicate(0x11, 0, 8);
    Path atOlder = snapshotOfSource("older");
    writeAndReplicate(0x22, 4, 2);
    writeAndReplicate(0x33, 1, 1);
    writeAndReplicate(0x44, 5, 2);

    TestCloneInfo clone = agents.s.createTestClone(VM, older, "drill-2");
    assertThat(clone.generation()).isEqualTo(older);
    assertThat(clone.scratchBytes()).as("only what changed since the point: 1 + 3 MiB")
        .isEqualTo(4 * MIB);
    compareRaw(atOlder.toString(), testUri()).assertOk();

    writeAndReplicate(0x66, 0, 16);
    compareRaw(atOlder.toString(), testUri()).assertOk();
  }

  @Test
  void cleanupLeavesNothingAndIsIdempotent() throws IOException {
    assumeInstalled("qemu-io", "nbdinfo");
    long point = writeAndReplicate(0x11, 0, 2);
    agents.s.createTestClone(VM, point, "drill-3");
    qemuIo(testUri(), "write -P 0x77 0 1M").assertOk();
    String listing = Tools.run("nbdinfo", "--list", nbdBase(agents.secondary)).assertOk().output();
    assertThat(listing).contains("web01-test/disk0");

    TestCleanupReport report = agents.s.deleteTestClone(VM);
    assertThat(report.existed()).isTrue();
    assertThat(report.remaining()).isEmpty();
    assertThat(agents.secondary.vms().dataDir().resolve("test-clones").resolve(VM)).doesNotExist();
    assertThat(agents.s.testClones()).isEmpty();
    assertThat(Tools.run("nbdinfo", "--list", nbdBase(agents.secondary)).assertOk().output())
        .doesNotContain("web01-test");
    qemuIo(testUri(), "read 0 4k").assertFailed();

    TestCleanupReport again = agents.s.deleteTestClone(VM);
    assertThat(again.existed()).isFalse();
    assertThat(again.remaining()).isEmpty();
    // the replica was never written by the test
    compareRaw(agents.primaryImage(VM, "disk0"), agents.replicaImage(VM, "disk0")).assertOk();
  }

  @Test
  void oneTestPerVmAndTheReplicaIsNotRewrittenUnderIt() {
    long point = writeAndReplicate(0x11, 0, 1);
    TestCloneInfo first = agents.s.createTestClone(VM, point, "drill-4");
    assertThat(agents.s.createTestClone(VM, point, "drill-4")).as("a retried create")
        .isEqualTo(first);
    assertThatThrownBy(() -> agents.s.createTestClone(VM, point, "another-drill"))
        .isInstanceOfSatisfying(AgentException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE))
        .hasMessageContaining("already has a test VM web01-test");
    assertThatThrownBy(() -> agents.s.rollbackReplica(VM, point))
        .isInstanceOfSatisfying(AgentException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.TEST_VM_ACTIVE));
    assertThatThrownBy(() -> agents.p.beginResync(VM))
        .isInstanceOfSatisfying(AgentException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.TEST_VM_ACTIVE))
        .hasMessageContaining("waits until that test is cleaned up");
  }

  @Test
  void anUnknownPointIsRefusedAndLeavesNothing() {
    assertThatThrownBy(() -> agents.s.createTestClone(VM, 42, "drill-5"))
        .isInstanceOfSatisfying(AgentException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE))
        .hasMessageContaining("not a retained recovery point");
    assertThat(agents.secondary.vms().dataDir().resolve("test-clones").resolve(VM)).doesNotExist();
    assertThatThrownBy(() -> agents.p.createTestClone(VM, 1, "drill-5"))
        .as("the primary holds no replica of " + VM)
        .isInstanceOf(AgentException.class).hasMessageContaining("not a replica");
  }

  @Test
  void aTestVmSurvivesARestartOfItsAgent() throws IOException {
    assumeInstalled("qemu-img", "qemu-io");
    long point = writeAndReplicate(0x11, 0, 4);
    Path atPoint = snapshotOfSource("at-point");
    agents.s.createTestClone(VM, point, "drill-6");
    qemuIo(testUri(), "write -P 0x77 8M 1M", "flush").assertOk();
    writeAndReplicate(0x22, 0, 2);

    Path secondaryDir = agents.secondary.vms().dataDir();
    agents.secondary.close();
    HostAgent restarted = AgentPair.start("secondary", secondaryDir);
    try {
      String uri = restarted.nbdUri(VM + "-test", "disk0");
      qemuIo(uri, "read -P 0x77 8M 1M", "read -P 0x11 0 4M").assertOk();
      qemuIo(uri, "write -z 8M 1M").assertOk(); // the point had zeroes there
      compareRaw(atPoint.toString(), uri).assertOk();
    } finally {
      restarted.close();
    }
  }

  private static String nbdBase(HostAgent agent) {
    return "nbd://127.0.0.1:" + agent.nbdPort();
  }
}
