package io.siterecovery.agent.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.FaultInjection;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.ApplyRequest;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.AgentProcess;
import io.siterecovery.agent.testing.Tools;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.RecoveryPointInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.LockSupport;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The replica agent, in its own JVM, dies at every step of an apply and of a rollback: at a named
 * crash point ({@code -Dsiterecovery.test.crashAt}, which halts the JVM like {@code kill -9}) and
 * at arbitrary moments with a real SIGKILL. After the restart the replica's disks must be exactly
 * the source's disks at the previous point or at the new one, never in between, and the recorded
 * applied generation must say which.
 */
class ApplyCrashTest {
  private static final long MIB = 1L << 20;
  private static final String VM = "web01";
  private static final Map<String, Long> SIZES = Map.of("disk0", 8 * MIB, "disk1", 2 * MIB);
  private static final List<String> DISKS = List.of("disk0", "disk1");

  @TempDir Path tmp;
  private HostAgent primary;
  private AgentProcess replica;
  private Path replicaData;
  private final Random rnd = new Random(20240601);
  /** The source's images as they were when each generation was sealed (the last few). */
  private final TreeMap<Long, List<Path>> expected = new TreeMap<>();

  @BeforeEach
  void protect() throws IOException {
    replicaData = tmp.resolve("secondary");
    replica = AgentProcess.start("secondary", replicaData);
    primary = AgentPair.start("primary", tmp.resolve("primary"));
    primary.addPeer("secondary", replica.url());
    AgentClient p = TestCerts.operatorClient(primary);
    p.createVm(VM, List.of(SIZES.get("disk0"), SIZES.get("disk1")));
    p.enableProtection(VM, "secondary");
    // random contents everywhere, so that undo data holds real old bytes, not just zeroes
    for (VirtualDisk d : vm().disks()) {
      for (long at = 0; at < d.size(); at += MIB) {
        d.write(at, random((int) MIB), false);
      }
    }
    for (String disk : DISKS) {
      p.copyRange(VM, disk, 0, SIZES.get(disk));
    }
    assertThat(p.replicate(VM).appliedGeneration()).isEqualTo(1);
    p.completeInitialReplication(VM);
    capture(1);
    // From here on the test drives the replica by hand (ship, apply), because every restart
    // puts it on new ports that the source's protection record does not know.
  }

  @AfterEach
  void stop() throws Exception {
    try {
      if (replica != null) {
        replica.close();
      }
    } finally {
      if (primary != null) {
        primary.close();
      }
    }
  }

  @Test
  void aCrashAtEveryStepOfAnApplyLeavesThePreviousOrTheNewPoint() throws Exception {
    long g = writeAndSeal();
    long records0 = records(g, "disk0");
    assertThat(records0).isGreaterThan(10);
    // step to crash at -> what the dead agent left in disk0 and disk1 (before the restart
    // repairs it); up to "apply-forced" the restart must bring back the previous point
    Map<String, String> steps = new LinkedHashMap<>();
    steps.put("undo-entry:3", "previous previous"); // the first undo file has just begun
    steps.put("undo-sealed", "previous previous"); // all undo durable, not one byte applied
    steps.put("apply-record:" + records0 / 2, "between previous"); // half of disk0
    steps.put("apply-record:" + (records0 + 1), "new between"); // disk0 done, disk1 begun
    steps.put("apply-forced", "new new"); // every record written, generation not recorded
    steps.put("apply-recorded", "new new"); // recorded: now it is the new point
    long applied = 1;
    for (Map.Entry<String, String> step : steps.entrySet()) {
      restartReplica(step.getKey());
      assertReplicaAt(applied);
      AgentClient s = replica.client();
      ship(feed(), g);
      expectCrash(() -> feed().applyLogs(VM, request(g)), step.getKey());
      assertThat(leftOnDisk(g)).as("images left by the crash at " + step.getKey())
          .isEqualTo(step.getValue());
      if (step.getKey().equals("apply-recorded")) {
        applied = g;
      }
    }
    restartReplica(null);
    assertReplicaAt(g);
    assertThat(applied).isEqualTo(g);

    // and a crash while the restart itself rolls a half-applied generation back
    long next = writeAndSeal();
    restartReplica("apply-forced");
    ship(feed(), next);
    expectCrash(() -> feed().applyLogs(VM, request(next)), "apply-forced");
    Tools.Result recovering = AgentProcess.runUntilExit("secondary", replicaData,
        List.of(crashAt("recover-entry:3")));
    assertThat(recovering.exitCode()).as(recovering.output())
        .isEqualTo(FaultInjection.EXIT_STATUS);
    assertThat(recovering.output()).contains("CRASH AT recover-entry 3");
    restartReplica(null);
    assertReplicaAt(g);

    // the half-applied generation, shipped again, applies cleanly
    AgentClient s = replica.client();
    ship(feed(), next);
    assertThat(feed().applyLogs(VM, request(next)).replica().appliedGeneration()).isEqualTo(next);
    assertReplicaAt(next);
    assertThat(s.getVm(VM).replica().points()).extracting(RecoveryPointInfo::generation)
        .containsExactly(1L, g, next);
    assertUndoFiles(g, next);
  }

  @Test
  void aCrashDuringARollbackIsFinishedOnRestart() throws Exception {
    AgentClient s = replica.client();
    long last = 1;
    for (int i = 0; i < 4; i++) {
      last = writeAndSeal();
      ship(feed(), last);
      feed().applyLogs(VM, request(last));
    }
    assertReplicaAt(last); // 5, with points 1..5
    assertThat(last).isEqualTo(5);

    // dies in the middle of restoring generation 5's undo data; the restart finishes the job
    restartReplica("rollback-entry:5");
    expectCrash(() -> replica.client().rollbackReplica(VM, 4), "rollback-entry");
    restartReplica(null);
    assertReplicaAt(4);

    // dies after generation 4 is rolled back and recorded, before its undo files are deleted
    restartReplica("rollback-recorded");
    expectCrash(() -> replica.client().rollbackReplica(VM, 2), "rollback-recorded");
    // ... and the restart that finishes it dies too, in the middle of restoring generation 3
    Tools.Result finishing = AgentProcess.runUntilExit("secondary", replicaData,
        List.of(crashAt("rollback-entry:2")));
    assertThat(finishing.exitCode()).as(finishing.output()).isEqualTo(FaultInjection.EXIT_STATUS);
    assertThat(finishing.output()).contains("CRASH AT rollback-entry 2");
    restartReplica(null);
    assertReplicaAt(2);
    assertThat(replica.client().getVm(VM).replica().points())
        .extracting(RecoveryPointInfo::generation).containsExactly(1L, 2L);

    restartReplica("rollback-entry:2");
    expectCrash(() -> replica.client().rollbackReplica(VM, 1), "rollback-entry");
    restartReplica(null);
    assertReplicaAt(1);
    assertThat(replica.client().getVm(VM).replica().points())
        .extracting(RecoveryPointInfo::generation).containsExactly(1L);
    assertUndoFiles();
  }

  @Test
  void aSigkillAtArbitraryMomentsOfAnApplyLeavesThePreviousOrTheNewPoint() throws Exception {
    // how long one apply takes here, to spread the kills over it
    long g = writeAndSeal();
    ship(feed(), g);
    long start = System.nanoTime();
    feed().applyLogs(VM, request(g));
    long applyNanos = System.nanoTime() - start;
    assertReplicaAt(g);

    int kills = 4;
    List<String> outcomes = new ArrayList<>();
    for (int i = 0; i < kills; i++) {
      long next = writeAndSeal();
      AgentClient s = replica.client();
      ship(feed(), next);
      CompletableFuture<VmRecord> call = CompletableFuture.supplyAsync(
          () -> feed().applyLogs(VM, request(next)));
      // kill -9 somewhere between the request and a little after a normal apply would end
      LockSupport.parkNanos(applyNanos * i / (kills - 2));
      replica.kill();
      call.handle((r, e) -> null).join();
      restartReplica(null);
      long at = replica.client().getVm(VM).replica().appliedGeneration();
      assertThat(at).as("applied generation after kill %d", i).isIn(next - 1, next);
      assertReplicaAt(at);
      outcomes.add(at == next ? "new" : "previous");
      if (at != next) {
        ship(feed(), next);
        feed().applyLogs(VM, request(next));
        assertReplicaAt(next);
      }
    }
    System.out.printf("SIGKILL during apply (%.0f ms each): replica after restart was at %s%n",
        applyNanos / 1e6, outcomes);
  }

  // ---------------------------------------------------------------------------------------------

  private Vm vm() {
    return primary.vms().get(VM);
  }

  private ByteBuffer random(int length) {
    byte[] b = new byte[length];
    rnd.nextBytes(b);
    return ByteBuffer.wrap(b);
  }

  /** Writes a burst on both disks (large and small overlapping writes, zeroes) and seals it. */
  private long writeAndSeal() throws IOException {
    for (VirtualDisk d : vm().disks()) {
      int writes = d.name().equals("disk0") ? 24 : 8;
      for (int i = 0; i < writes; i++) {
        long at = rnd.nextLong(d.size() - (256 << 10)) / 4096 * 4096;
        switch (rnd.nextInt(8)) {
          case 0 -> d.writeZeroes(at, 256 << 10, false);
          case 1, 2 -> d.write(at, random(4096), false);
          default -> d.write(at, random(256 << 10), false);
        }
      }
    }
    long sealed = -1;
    for (VirtualDisk d : vm().disks()) {
      sealed = d.withWritesHeld(() -> d.tracker().swap());
    }
    capture(sealed);
    return sealed;
  }

  private void capture(long generation) throws IOException {
    List<Path> copies = new ArrayList<>();
    for (String disk : DISKS) {
      Path copy = tmp.resolve("expected-" + generation + "-" + disk + ".img");
      Files.copy(primary.diskImage(VM, disk), copy, StandardCopyOption.REPLACE_EXISTING);
      copies.add(copy);
    }
    expected.put(generation, copies);
  }

  private Path sourceLog(long generation, String disk) {
    return primary.diskImage(VM, disk).resolveSibling(HrlFormat.fileName(disk, generation));
  }

  private long records(long generation, String disk) throws IOException {
    return HrlReader.verifySealed(sourceLog(generation, disk)).records();
  }

  private void ship(AgentClient s, long generation) {
    for (String disk : DISKS) {
      feed().sendLog(VM, disk, generation, sourceLog(generation, disk));
    }
  }

  private static ApplyRequest request(long generation) {
    return new ApplyRequest(generation, Instant.now(), false, null);
  }

  /** The replica agent as the source site reaches it. */
  private AgentClient feed() {
    return replica.clientAs(Identity.site("primary"));
  }

  private static String crashAt(String spec) {
    return "-D" + FaultInjection.PROPERTY + "=" + spec;
  }

  /** Kills the running replica agent (if any) and starts it again, optionally with a crash point. */
  private void restartReplica(String crashSpec) throws Exception {
    replica.close();
    replica = AgentProcess.start("secondary", replicaData,
        crashSpec == null ? List.of() : List.of(crashAt(crashSpec)));
    primary.addPeer("secondary", replica.url()); // its new port
  }

  /** The call must fail because the agent halted at the crash point (not for another reason). */
  private void expectCrash(Runnable call, String step) throws InterruptedException {
    AgentException e = catchThrowableOfType(AgentException.class, call::run);
    assertThat(e).as("the call should have lost its agent at " + step).isNotNull();
    assertThat(e.code()).as(e.getMessage()).isEqualTo(ErrorCode.PEER_UNREACHABLE);
    assertThat(replica.awaitExit(Duration.ofSeconds(30))).as(replica.output())
        .isEqualTo(FaultInjection.EXIT_STATUS);
    assertThat(replica.output()).contains("CRASH AT " + step.split(":")[0]);
  }

  /** Every replica disk equals the source's disk at that point, and the record says so too. */
  private void assertReplicaAt(long generation) throws IOException {
    VmRecord r = replica.client().getVm(VM);
    List<Path> images = expected.get(generation);
    assertThat(images).as("captured images of generation " + generation).isNotNull();
    for (int i = 0; i < DISKS.size(); i++) {
      Path actual = replicaData.resolve("vms").resolve(VM).resolve(DISKS.get(i) + ".img");
      assertThat(Files.mismatch(actual, images.get(i)))
          .as("%s of the replica against the source at generation %d (matches previous: %s)",
              DISKS.get(i), generation, expected.containsKey(generation - 1)
                  && Files.mismatch(actual, expected.get(generation - 1).get(i)) == -1)
          .isEqualTo(-1L);
    }
    assertThat(r.replica().appliedGeneration()).isEqualTo(generation);
    // keep the last few captures only
    while (expected.size() > 6) {
      for (Path p : expected.pollFirstEntry().getValue()) {
        Files.deleteIfExists(p);
      }
    }
  }

  /** For each disk of the (stopped) replica: equal to the previous point, the new one, or neither. */
  private String leftOnDisk(long generation) throws IOException {
    List<String> states = new ArrayList<>();
    for (int i = 0; i < DISKS.size(); i++) {
      Path actual = replicaData.resolve("vms").resolve(VM).resolve(DISKS.get(i) + ".img");
      if (Files.mismatch(actual, expected.get(generation - 1).get(i)) == -1) {
        states.add("previous");
      } else if (Files.mismatch(actual, expected.get(generation).get(i)) == -1) {
        states.add("new");
      } else {
        states.add("between");
      }
    }
    return String.join(" ", states);
  }

  /** The replica's undo folder holds exactly these generations' files, one per disk. */
  private void assertUndoFiles(long... generations) throws IOException {
    Path dir = replicaData.resolve("vms").resolve(VM).resolve("undo");
    List<String> want = new ArrayList<>();
    for (long g : generations) {
      for (String disk : DISKS) {
        want.add(String.format("%s-%012d.undo", disk, g));
      }
    }
    List<String> have;
    try (Stream<Path> files = Files.exists(dir) ? Files.list(dir) : Stream.empty()) {
      have = files.map(p -> p.getFileName().toString()).toList();
    }
    assertThat(have).containsExactlyInAnyOrderElementsOf(want);
  }
}
