package io.siterecovery.agent.source;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.vm.VmRecord;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A site lost during an unplanned failover comes back: before its agent serves anything it learns
 * from the partner that the VM runs there now, and fences its own copy; checked through NBD with
 * qemu-io, a client we did not write.
 */
class FenceAtStartTest {
  private static final long MIB = 1L << 20;
  private static final String VM = "web01";

  @TempDir Path tmp;
  private AgentPair agents;
  private Path primaryDir;

  @BeforeEach
  void start() throws IOException {
    agents = AgentPair.start(tmp);
    agents.createProtected(VM, 8 * MIB);
    agents.initialCopy(VM, "disk0", 8 * MIB, 4 * MIB, null);
    agents.p.replicate(VM);
    agents.p.completeInitialReplication(VM);
    primaryDir = agents.primary.vms().dataDir();
    agents.primary.close(); // the site is lost, its VM still marked running
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  private HostAgent restartPrimary(String secondaryUrl) throws IOException {
    return new HostAgent(new HostAgent.Settings("primary", primaryDir, "127.0.0.1", 0, 0,
        TestCerts.site("primary"), Map.of("secondary", secondaryUrl)));
  }

  @Test
  void aVmThatFailedOverWhileItsSiteWasDownIsFencedBeforeItIsServed() throws IOException {
    assumeInstalled("qemu-io");
    long point = agents.s.getVm(VM).replica().appliedGeneration();
    agents.s.startReplica(VM, point, "unplanned");
    agents.s.promoteReplica(VM);

    HostAgent back = restartPrimary(agents.secondary.url());
    try {
      AgentClient p = TestCerts.operatorClient(back);
      VmRecord record = p.getVm(VM);
      assertThat(record.role()).isEqualTo(VmRecord.Role.FAILED_OVER);
      assertThat(record.power()).isEqualTo(VmRecord.Power.OFF);
      qemuIo(back.nbdUri(VM, "disk0"), "read 0 4k").assertFailed();
    } finally {
      back.close();
    }
  }

  @Test
  void aPartnerThatDoesNotAnswerLeavesTheVmAsItWas() throws IOException {
    assumeInstalled("qemu-io");
    HostAgent back = restartPrimary("https://127.0.0.1:9"); // nothing listens there
    try {
      VmRecord record = TestCerts.operatorClient(back).getVm(VM);
      assertThat(record.role()).isEqualTo(VmRecord.Role.PRIMARY);
      qemuIo(back.nbdUri(VM, "disk0"), "read 0 4k").assertOk();
    } finally {
      back.close();
    }
  }

  @Test
  void aPartnerThatDoesNotRunTheVmLeavesItAsItWas() throws IOException {
    HostAgent back = restartPrimary(agents.secondary.url());
    try {
      assertThat(TestCerts.operatorClient(back).getVm(VM).role())
          .isEqualTo(VmRecord.Role.PRIMARY);
    } finally {
      back.close();
    }
  }
}
