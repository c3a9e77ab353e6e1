package io.siterecovery.agent.api;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentMessages.ApplyRequest;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.Power;
import io.siterecovery.agent.vm.VmRecord.Role;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/** The agent API's contract: stable error codes, idempotent steps, state that survives restart. */
class AgentApiTest {
  private static final long SIZE = 4L << 20;

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

  private static ErrorCode codeOf(Executable call) {
    AgentException e = catchThrowableOfType(AgentException.class, () -> {
      try {
        call.execute();
      } catch (AgentException ae) {
        throw ae;
      } catch (Throwable t) {
        throw new AssertionError(t);
      }
    });
    assertThat(e).as("an AgentException").isNotNull();
    return e.code();
  }

  @Test
  void requestsAreValidatedWithStableCodes() {
    assertThat(agents.p.health()).isEqualTo("primary");
    VmRecord vm = agents.p.createVm("web01", List.of(SIZE, 2 * SIZE));
    assertThat(vm.role()).isEqualTo(Role.PRIMARY);
    assertThat(vm.power()).isEqualTo(Power.RUNNING);
    assertThat(vm.disks()).extracting(VmRecord.DiskSpec::name).containsExactly("disk0", "disk1");
    assertThat(agents.p.listVms()).extracting(VmRecord::name).containsExactly("web01");

    assertThat(codeOf(() -> agents.p.createVm("web01", List.of(SIZE))))
        .isEqualTo(ErrorCode.VM_EXISTS);
    assertThat(codeOf(() -> agents.p.getVm("nope"))).isEqualTo(ErrorCode.VM_NOT_FOUND);
    assertThat(codeOf(() -> agents.p.createVm("../etc", List.of(SIZE))))
        .isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(codeOf(() -> agents.p.createVm("a..b", List.of(SIZE))))
        .isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(codeOf(() -> agents.p.createVm("odd", List.of(1000L))))
        .isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(codeOf(() -> agents.p.createVm("none", List.of()))).isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(codeOf(() -> agents.p.copyRange("web01", "disk0", 0, SIZE)))
        .as("copy before protection").isEqualTo(ErrorCode.INVALID_STATE);
    assertThat(codeOf(() -> agents.p.replicate("web01"))).isEqualTo(ErrorCode.INVALID_STATE);
    assertThat(codeOf(() -> agents.p.setPower("web01", null))).isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(tmp.resolve("primary").resolve("etc")).doesNotExist();
  }

  @Test
  void enableProtectionIsIdempotentAndCreatesTheReplica() {
    agents.createProtected("web01", SIZE);
    AgentMessages.ProtectionState again =
        agents.p.enableProtection("web01", "secondary");
    assertThat(again.initialComplete()).isFalse();
    assertThat(again.activeGeneration()).isEqualTo(1);

    VmRecord replica = agents.s.getVm("web01");
    assertThat(replica.role()).isEqualTo(Role.REPLICA);
    assertThat(replica.power()).isEqualTo(Power.OFF);
    assertThat(replica.disks()).isEqualTo(agents.p.getVm("web01").disks());
    assertThat(codeOf(() -> agents.p.enableProtection("web01", "elsewhere")))
        .isEqualTo(ErrorCode.INVALID_STATE);
    assertThat(codeOf(() -> agents.s.enableProtection("web01", "primary")))
        .as("a replica is not a source").isEqualTo(ErrorCode.INVALID_STATE);
  }

  @Test
  void anUnreachablePeerIsARecoverableError() throws IOException {
    agents.p.createVm("web01", List.of(SIZE));
    int closedPort;
    try (ServerSocket s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
      closedPort = s.getLocalPort();
    }
    agents.primary.addPeer("secondary", "https://127.0.0.1:" + closedPort);
    ErrorCode code = codeOf(() -> agents.p.enableProtection("web01", "secondary"));
    assertThat(code).isEqualTo(ErrorCode.PEER_UNREACHABLE);
    assertThat(code.recoverable()).isTrue();
    assertThat(agents.p.getVm("web01").protection()).isNull();

    AgentClient nowhere = TestCerts.operatorClient("https://127.0.0.1:" + closedPort, "primary");
    assertThat(codeOf(nowhere::listVms)).isEqualTo(ErrorCode.PEER_UNREACHABLE);
  }

  @Test
  void aCopyToAReplicaThatIsGoneReportsTheRealCause() {
    agents.createProtected("web01", SIZE);
    agents.p.copyRange("web01", "disk0", 0, SIZE);
    agents.feed.deleteReplica("web01");
    ErrorCode code = codeOf(() -> agents.p.copyRange("web01", "disk0", 0, SIZE));
    assertThat(code).as("not a transport error that would be retried forever")
        .isEqualTo(ErrorCode.VM_NOT_FOUND);
  }

  @Test
  void repeatingACycleAfterACrashBetweenApplyAndCleanupIsHarmless() throws IOException {
    agents.createProtected("web01", SIZE);
    agents.p.copyRange("web01", "disk0", 0, SIZE);
    agents.p.replicate("web01");
    agents.p.completeInitialReplication("web01");

    // one cycle by hand that stops after the apply, before the source deletes its sealed log
    VirtualDisk disk = agents.primary.vms().get("web01").disk("disk0");
    disk.write(0, ByteBuffer.wrap(new byte[] {1, 2, 3, 4}), true);
    long sealed = disk.withWritesHeld(() -> disk.tracker().swap());
    Path log = disk.tracker().sealedLogs().get(0).path();
    agents.feed.sendLog("web01", "disk0", sealed, log);
    agents.feed.applyLogs("web01", new ApplyRequest(sealed, Instant.now(), false, null));

    // the next cycle ships that generation again; the replica skips it and moves on
    disk.write(4, ByteBuffer.wrap(new byte[] {5, 6}), true);
    AgentMessages.ReplicationResult r = agents.p.replicate("web01");
    assertThat(r.appliedGeneration()).isEqualTo(sealed + 1);
    assertThat(agents.p.sourceStatus("web01").sealedLogs()).isZero();
    assertThat(Files.mismatch(agents.primary.diskImage("web01", "disk0"),
        agents.secondary.diskImage("web01", "disk0"))).isEqualTo(-1L);
    Path incoming = agents.secondary.diskImage("web01", "disk0").resolveSibling("incoming");
    try (Stream<Path> left = Files.list(incoming)) {
      assertThat(left.toList()).as("logs left behind in the replica's incoming folder").isEmpty();
    }
  }

  @Test
  void stateSurvivesARestartOfBothAgents() throws IOException {
    agents.createProtected("web01", SIZE);
    agents.p.copyRange("web01", "disk0", 0, SIZE);
    agents.p.replicate("web01");
    agents.p.completeInitialReplication("web01");
    agents.p.setPower("web01", Power.OFF);
    agents.close();

    try (HostAgent primary = AgentPair.start("primary", tmp.resolve("primary"));
        HostAgent secondary = AgentPair.start("secondary", tmp.resolve("secondary"))) {
      AgentClient p = TestCerts.operatorClient(primary);
      AgentClient s = TestCerts.operatorClient(secondary);
      VmRecord source = p.getVm("web01");
      assertThat(source.power()).isEqualTo(Power.OFF);
      assertThat(source.protection().initialComplete()).isTrue();
      assertThat(primary.vms().exportNames()).isEmpty();
      VmRecord replica = s.getVm("web01");
      assertThat(replica.replica().appliedGeneration()).isEqualTo(1);
      assertThat(replica.replica().initialComplete()).isTrue();
      assertThat(p.sourceStatus("web01").activeGeneration()).isEqualTo(2);
      assertThat(Files.exists(tmp.resolve("primary/vms/web01")
          .resolve(HrlFormat.fileName("disk0", 2)))).isTrue();
    }
  }
}
