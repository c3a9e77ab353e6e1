package io.siterecovery.agent.source;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.ReplicateRequest;
import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.RawHttp;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.QuiesceHooks;
import io.siterecovery.agent.vm.QuiesceHooks.Hook;
import io.siterecovery.agent.vm.VmRecord.RecoveryPointInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * App-consistent points: with {@code quiesce}, the source runs the VM's hook before the swap; a
 * hook that exits 0 in time makes the sealed generation app-consistent on the replica, anything
 * else leaves it crash-consistent with the reason in the result.
 */
class QuiesceHookTest {
  private static final long SIZE = 4L << 20;
  private static final String VM = "web01";
  private static final ReplicateRequest QUIESCE = new ReplicateRequest(null, true, null);

  @TempDir Path tmp;
  private AgentPair agents;

  @BeforeEach
  void protect() throws IOException {
    agents = AgentPair.start(tmp);
    agents.createProtected(VM, SIZE);
    agents.initialCopy(VM, "disk0", SIZE, SIZE, null);
    agents.p.replicate(VM);
    agents.p.completeInitialReplication(VM);
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  private RecoveryPointInfo latestPoint() {
    List<RecoveryPointInfo> points = agents.s.getVm(VM).replica().points();
    return points.get(points.size() - 1);
  }

  private void write(int value) throws IOException {
    byte[] b = new byte[4096];
    java.util.Arrays.fill(b, (byte) value);
    agents.primary.vms().get(VM).disk("disk0").write(0, ByteBuffer.wrap(b), true);
  }

  @Test
  void aHookThatSucceedsMakesTheSealedPointAppConsistent() throws IOException {
    setHook(new Hook(List.of("true"), 10));
    write(1);
    ReplicationResult r = agents.p.replicate(VM, QUIESCE);
    assertThat(r.appConsistent()).isTrue();
    assertThat(r.quiesceMessage()).isNull();
    assertThat(r.appliedGeneration()).isEqualTo(r.lastSealedGeneration());
    assertThat(latestPoint().generation()).isEqualTo(r.appliedGeneration());
    assertThat(latestPoint().appConsistent()).isTrue();

    // the next cycle without quiesce is crash-consistent again
    ReplicationResult plain = agents.p.replicate(VM);
    assertThat(plain.appConsistent()).isFalse();
    assertThat(plain.quiesceMessage()).isNull();
    assertThat(latestPoint().appConsistent()).isFalse();
  }

  @Test
  void theHookRunsBeforeTheSwapWithoutHoldingWritesAndKnowsItsVm() throws IOException {
    assumeInstalled("qemu-io");
    Path marker = tmp.resolve("marker");
    // like an application flushing its buffers: the hook writes to the VM's disk through NBD,
    // which would hang until the timeout if the agent held the disk's writes meanwhile
    String script = "echo \"$SITE_RECOVERY_VM\" > '" + marker + "' && qemu-io -f raw"
        + " -c 'write -P 0x5a 1M 64k' -c flush " + agents.primary.nbdUri(VM, "disk0");
    setHook(new Hook(List.of("sh", "-c", script), 30));

    ReplicationResult r = agents.p.replicate(VM, QUIESCE);
    assertThat(r.quiesceMessage()).isNull();
    assertThat(r.appConsistent()).isTrue();
    assertThat(Files.readString(marker).trim()).isEqualTo(VM);
    // the hook's write is part of the generation sealed after it
    assertThat(Files.mismatch(agents.primary.diskImage(VM, "disk0"),
        agents.secondary.diskImage(VM, "disk0"))).isEqualTo(-1L);
    assertThat(Files.readAllBytes(agents.secondary.diskImage(VM, "disk0"))[(1 << 20) + 100])
        .isEqualTo((byte) 0x5a);
  }

  @Test
  void aFailingHookLeavesACrashConsistentPointAndSaysWhy() throws IOException {
    setHook(new Hook(List.of("sh", "-c", "echo frozen fs busy; exit 3"),
        10));
    write(2);
    ReplicationResult r = agents.p.replicate(VM, QUIESCE);
    assertThat(r.appConsistent()).isFalse();
    assertThat(r.quiesceMessage()).contains("exited with status 3").contains("frozen fs busy");
    assertThat(r.appliedGeneration()).as("the cycle still replicates").isEqualTo(2);
    assertThat(latestPoint().appConsistent()).isFalse();

    setHook(new Hook(List.of("false"), 10));
    assertThat(agents.p.replicate(VM, QUIESCE).quiesceMessage()).contains("status 1");

    setHook(new Hook(List.of(tmp.resolve("no-such-hook").toString()),
        10));
    ReplicationResult missing = agents.p.replicate(VM, QUIESCE);
    assertThat(missing.appConsistent()).isFalse();
    assertThat(missing.quiesceMessage()).contains("could not start");
  }

  @Test
  void aHookThatHangsIsKilledAtItsTimeoutWithWhatItStarted() throws Exception {
    setHook(new Hook(List.of("sleep", "30"), 1));
    long begin = System.nanoTime();
    ReplicationResult plain = agents.p.replicate(VM, QUIESCE);
    assertThat(Duration.ofNanos(System.nanoTime() - begin)).isLessThan(Duration.ofSeconds(15));
    assertThat(plain.appConsistent()).isFalse();
    assertThat(plain.quiesceMessage()).contains("quiesce hook of " + VM + " timed out after 1 s and was killed")
        .as("the command is configuration of the host, not part of answers")
        .doesNotContain("sleep");

    Path pids = tmp.resolve("pids");
    // a child of the hook that would outlive it if only the hook itself were killed
    String script = "sleep 30 & echo $$ $! > '" + pids + "'; wait";
    setHook(new Hook(List.of("sh", "-c", script), 1));
    long start = System.nanoTime();
    ReplicationResult r = agents.p.replicate(VM, QUIESCE);
    Duration took = Duration.ofNanos(System.nanoTime() - start);
    assertThat(took).isLessThan(Duration.ofSeconds(15));
    assertThat(r.appConsistent()).isFalse();
    assertThat(r.quiesceMessage()).contains("timed out after 1 s");
    assertThat(r.appliedGeneration()).isEqualTo(3);
    for (String pid : Files.readString(pids).trim().split("\\s+")) {
      assertDies(Long.parseLong(pid));
    }
  }

  @Test
  void withoutAHookOrWithoutQuiesceThePointIsCrashConsistent() throws IOException {
    ReplicationResult none = agents.p.replicate(VM, QUIESCE);
    assertThat(none.appConsistent()).isFalse();
    assertThat(none.quiesceMessage()).contains("no quiesce hook");

    Path marker = tmp.resolve("ran");
    setHook(new Hook(List.of("touch", marker.toString()), 10));
    ReplicationResult notAsked = agents.p.replicate(VM, new ReplicateRequest(null, false, null));
    assertThat(notAsked.appConsistent()).isFalse();
    assertThat(notAsked.quiesceMessage()).isNull();
    assertThat(marker).doesNotExist();
    assertThat(agents.p.replicate(VM).appConsistent()).isFalse();
    assertThat(marker).doesNotExist();
  }

  @Test
  void anAppConsistentGenerationShippedByALaterCycleStaysAppConsistent() throws IOException {
    setHook(new Hook(List.of("true"), 10));
    // the replica refuses logs for a while: the quiesced generation is sealed, not shipped
    agents.s.setRole(VM, VmRecord.Role.PRIMARY);
    write(3);
    AgentException refused = catchThrowableOfType(AgentException.class,
        () -> agents.p.replicate(VM, QUIESCE));
    assertThat(refused.code()).as("a VM that is no replica takes nothing from its old source")
        .isEqualTo(ErrorCode.FORBIDDEN);
    agents.s.setRole(VM, VmRecord.Role.REPLICA);

    ReplicationResult later = agents.p.replicate(VM);
    assertThat(later.appliedGeneration()).isEqualTo(3);
    assertThat(later.appConsistent()).as("generation 3, sealed by this call").isFalse();
    List<RecoveryPointInfo> points = agents.s.getVm(VM).replica().points();
    assertThat(points).extracting(RecoveryPointInfo::generation).containsExactly(1L, 2L, 3L);
    assertThat(points).extracting(RecoveryPointInfo::appConsistent)
        .containsExactly(false, true, false);
    assertThat(agents.primary.diskImage(VM, "disk0").resolveSibling("app-consistent"))
        .isEmptyDirectory();
  }

  @Test
  void theHookIsLocalConfigurationValidatedAndNeverShownOrSetOverTheApi() throws Exception {
    assertThatThrownBy(() -> new Hook(List.of(), 10)).hasMessageContaining("needs a command");
    assertThatThrownBy(() -> new Hook(null, 10)).hasMessageContaining("needs a command");
    assertThatThrownBy(() -> new Hook(List.of("true"), 0)).hasMessageContaining("timeout");
    assertThatThrownBy(() -> QuiesceHooks.set(dataDir(), "../etc", new Hook(List.of("true"), 5)))
        .hasMessageContaining("invalid VM name");

    Hook hook = new Hook(List.of("/usr/sbin/fsfreeze-hook", "--vm", "x y"), 20);
    setHook(hook);
    assertThat(QuiesceHooks.read(dataDir(), VM)).contains(hook);
    Path file = QuiesceHooks.file(dataDir(), VM);
    assertThat(Files.getPosixFilePermissions(file))
        .isEqualTo(java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
    String answers = new String(Json.MAPPER.writeValueAsBytes(agents.p.getVm(VM)))
        + new String(Json.MAPPER.writeValueAsBytes(agents.p.listVms()));
    assertThat(answers).as("the API shows no command").doesNotContain("fsfreeze");

    // the endpoints that once set a hook from the network are gone
    for (String method : List.of("PUT", "DELETE")) {
      java.net.http.HttpResponse<String> r = RawHttp.send(agents.primary, Identity.operator(),
          method, "/v1/vms/" + VM + "/quiesce-hook",
          "{\"command\":[\"sh\",\"-c\",\"id > /tmp/x\"],\"timeoutSeconds\":5}");
      assertThat(r.statusCode()).as(method).isEqualTo(404);
    }
    assertThat(QuiesceHooks.read(dataDir(), VM)).contains(hook);

    // a hook file others may write is refused, and the point says so without the command
    Files.setPosixFilePermissions(file,
        java.nio.file.attribute.PosixFilePermissions.fromString("rw-rw-rw-"));
    ReplicationResult r = agents.p.replicate(VM, QUIESCE);
    assertThat(r.appConsistent()).isFalse();
    assertThat(r.quiesceMessage()).contains("misconfigured").doesNotContain("fsfreeze");

    QuiesceHooks.set(dataDir(), VM, null);
    assertThat(QuiesceHooks.read(dataDir(), VM)).isEmpty();
  }

  private Path dataDir() {
    return tmp.resolve("primary");
  }

  private void setHook(Hook hook) throws IOException {
    QuiesceHooks.set(dataDir(), VM, hook);
  }

  private static ErrorCode codeOf(Runnable call) {
    AgentException e = catchThrowableOfType(AgentException.class, call::run);
    assertThat(e).as("an AgentException").isNotNull();
    return e.code();
  }

  /** Polls /proc with a deadline: gone, or a zombie waiting for its reaper, counts as dead. */
  private static void assertDies(long pid) throws IOException {
    Path stat = Path.of("/proc", Long.toString(pid), "stat");
    long deadline = System.nanoTime() + Duration.ofSeconds(10).toNanos();
    while (System.nanoTime() < deadline) {
      try {
        String s = Files.readString(stat);
        if (s.substring(s.lastIndexOf(')') + 2).startsWith("Z")) {
          return;
        }
      } catch (java.nio.file.NoSuchFileException gone) {
        return;
      }
      Thread.onSpinWait();
    }
    throw new AssertionError("process " + pid + " still runs after the hook timed out");
  }
}
