package io.siterecovery.agent.replica;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.ApplyRequest;
import io.siterecovery.agent.api.AgentMessages.ReplicateRequest;
import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.RawHttp;
import io.siterecovery.agent.testing.Tools;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.Power;
import io.siterecovery.agent.vm.VmRecord.RecoveryPointInfo;
import java.io.IOException;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.LongStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;

/**
 * Recovery points on the replica: every applied generation is a point, the undo journal takes the
 * replica back to any retained one byte for byte (judged by {@code qemu-img compare} against a copy
 * of the source image taken at that point), retention prunes old points and their undo files, and
 * the chain is checked again when the agent starts.
 */
class RecoveryPointsTest {
  private static final long MIB = 1L << 20;
  private static final String VM = "web01";
  private static final List<String> DISKS = List.of("disk0", "disk1");

  @TempDir Path tmp;
  private AgentPair agents;
  /** Copies of the source's images at each generation: the content of that recovery point. */
  private final Map<Long, List<Path>> captured = new HashMap<>();

  @BeforeEach
  void start() throws IOException {
    agents = AgentPair.start(tmp);
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  @Test
  void rollingBackReturnsTheReplicaToEachRetainedPointByteForByte() throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    protectAndCopy();
    String disk0 = agents.primary.nbdUri(VM, "disk0");
    String disk1 = agents.primary.nbdUri(VM, "disk1");
    for (long k = 2; k <= 5; k++) {
      // each generation rewrites the first MiB, writes elsewhere, zeroes and discards
      qemuIo(disk0, "write -P " + (0x30 + k) + " 0 1M",
          "write -P " + (0x40 + k) + " " + k * 512 + "k 256k",
          "write -z " + (3072 - k * 64) + "k 64k",
          "discard " + (2048 + k * 128) + "k 128k").assertOk();
      qemuIo(disk1, "write -P " + (0x50 + k) + " " + k * 256 + "k 300k").assertOk();
      ReplicationResult r = agents.p.replicate(VM);
      assertThat(r.appliedGeneration()).isEqualTo(k);
      assertThat(r.appConsistent()).isFalse();
      assertThat(r.quiesceMessage()).isNull();
      capture(k);
    }

    VmRecord.ReplicaState state = agents.s.getVm(VM).replica();
    List<RecoveryPointInfo> points = state.points();
    assertThat(points).extracting(RecoveryPointInfo::generation)
        .containsExactly(1L, 2L, 3L, 4L, 5L);
    assertThat(points.get(0).undoBytes()).as("nothing older than the first point").isZero();
    assertThat(points.get(1).undoBytes()).isPositive(); // old contents partly zero: compact
    assertThat(points.subList(2, 5)).allSatisfy(p -> {
      assertThat(p.undoBytes()).isGreaterThan(MIB); // at least disk0's first MiB, non-zero now
      assertThat(p.appConsistent()).isFalse();
    });
    assertThat(points).extracting(RecoveryPointInfo::pointTime).isSorted().doesNotContainNull();
    assertThat(state.pointTime()).isEqualTo(points.get(4).pointTime());
    assertThat(undoFiles()).hasSize(2 * 4);

    // refused while the replica runs, and for generations that are not retained points
    agents.s.startReplica(VM, 5, "failover");
    assertThat(codeOf(() -> agents.s.rollbackReplica(VM, 3))).isEqualTo(ErrorCode.INVALID_STATE);
    agents.s.stopReplica(VM);
    assertThat(codeOf(() -> agents.s.rollbackReplica(VM, 6))).isEqualTo(ErrorCode.INVALID_STATE);
    assertThat(codeOf(() -> agents.s.rollbackReplica(VM, 0))).isEqualTo(ErrorCode.INVALID_STATE);
    assertThat(codeOf(() -> agents.p.rollbackReplica(VM, 1)))
        .as("the source is not a replica").isEqualTo(ErrorCode.INVALID_STATE);
    assertReplicaEquals(5);

    for (long target : new long[] {4, 2, 1}) {
      VmRecord after = agents.s.rollbackReplica(VM, target);
      assertThat(after.replica().appliedGeneration()).isEqualTo(target);
      assertThat(after.replica().pointTime()).isEqualTo(points.get((int) target - 1).pointTime());
      assertThat(after.replica().points()).extracting(RecoveryPointInfo::generation)
          .containsExactlyElementsOf(LongStream.rangeClosed(1, target).boxed().toList());
      assertReplicaEquals(target);
      assertThat(undoFiles()).hasSize(2 * (int) (target - 1));
    }
    assertThat(agents.s.rollbackReplica(VM, 1).replica().appliedGeneration())
        .as("rolling back to the current point changes nothing").isEqualTo(1);
    assertThat(codeOf(() -> agents.s.rollbackReplica(VM, 3)))
        .as("points after the rollback target are gone").isEqualTo(ErrorCode.INVALID_STATE);

    // The source's log chain has moved on: its next cycle is refused, the replica untouched.
    qemuIo(disk0, "write -P 0x77 0 64k").assertOk();
    assertThat(codeOf(() -> agents.p.replicate(VM))).isEqualTo(ErrorCode.INVALID_STATE);
    assertReplicaEquals(1);
  }

  @Test
  void pointsOlderThanTheRetentionArePrunedWithTheirUndoFiles() throws IOException {
    protectAndCopy();
    Instant t0 = Instant.now().plusSeconds(3600);
    Random rnd = new Random(7);
    for (long g = 2; g <= 6; g++) {
      writeRandom(rnd);
      long sealed = swapAndShip();
      assertThat(sealed).isEqualTo(g);
      // points 10 s apart; keep 25 s: the points at 40, 50 and 60 s stay
      agents.feed.applyLogs(VM, new ApplyRequest(g, t0.plusSeconds(10 * g), g % 2 == 0,
          g < 6 ? null : 25L));
      deleteSourceLogs(g);
    }
    List<RecoveryPointInfo> points = agents.s.getVm(VM).replica().points();
    assertThat(points).extracting(RecoveryPointInfo::generation).containsExactly(4L, 5L, 6L);
    assertThat(points).extracting(RecoveryPointInfo::appConsistent)
        .containsExactly(true, false, true);
    assertThat(points.get(0).undoBytes()).as("its undo data went with point 3").isZero();
    assertThat(points.get(1).undoBytes()).isPositive();
    assertThat(undoFiles()).containsExactlyInAnyOrder("disk0-000000000005.undo",
        "disk1-000000000005.undo", "disk0-000000000006.undo", "disk1-000000000006.undo");
    assertThat(points.get(1).undoBytes() + points.get(2).undoBytes())
        .isEqualTo(sizeOfUndoFiles());

    assertThat(codeOf(() -> agents.s.rollbackReplica(VM, 3))).isEqualTo(ErrorCode.INVALID_STATE);
    agents.s.rollbackReplica(VM, 4);
    assertReplicaEquals(4);
    assertThat(undoFiles()).isEmpty();

    // a negative retention is a bad request
    assertThat(codeOf(() -> agents.feed.applyLogs(VM, new ApplyRequest(5, t0, false, -1L))))
        .isEqualTo(ErrorCode.BAD_REQUEST);
    assertThat(codeOf(() -> agents.p.replicate(VM, new ReplicateRequest(-1L, false, null))))
        .isEqualTo(ErrorCode.BAD_REQUEST);
  }

  @Test
  void aCycleWithZeroRetentionKeepsOnlyTheNewestPoint() throws IOException {
    protectAndCopy();
    Random rnd = new Random(8);
    for (int i = 0; i < 3; i++) {
      writeRandom(rnd);
      agents.p.replicate(VM, new ReplicateRequest(null, false, null));
    }
    assertThat(agents.s.getVm(VM).replica().points()).hasSize(4);
    writeRandom(rnd);
    ReplicationResult r = agents.p.replicate(VM, new ReplicateRequest(0L, false, null));
    List<RecoveryPointInfo> points = agents.s.getVm(VM).replica().points();
    assertThat(points.get(points.size() - 1).generation()).isEqualTo(r.appliedGeneration());
    // every point sealed before the newest one is gone (seal times come from the file system
    // clock, so two seals may share a timestamp; those would stay)
    assertThat(points).allSatisfy(p -> assertThat(p.pointTime()).isEqualTo(r.pointTime()));
    assertThat(undoFiles()).hasSize(2 * (points.size() - 1));
    assertThat(Files.mismatch(agents.primary.diskImage(VM, "disk0"),
        agents.secondary.diskImage(VM, "disk0"))).isEqualTo(-1L);
  }

  @Test
  void theUndoChainIsCheckedWhenTheAgentStarts() throws IOException {
    protectAndCopy();
    Random rnd = new Random(9);
    for (long g = 2; g <= 4; g++) {
      writeRandom(rnd);
      agents.p.replicate(VM);
      capture(g);
    }
    agents.close();

    Path undo = agents.secondary.diskImage(VM, "disk0").resolveSibling("undo");
    Files.delete(undo.resolve("disk1-000000000003.undo")); // the way back from 3 to 2 is lost
    Files.copy(undo.resolve("disk0-000000000004.undo"), undo.resolve("disk0-000000000001.undo"));
    Files.write(undo.resolve("disk0-000000000005.undo.part"), new byte[100]);

    try (HostAgent secondary = AgentPair.start("secondary", tmp.resolve("secondary"))) {
      AgentClient s = TestCerts.operatorClient(secondary);
      VmRecord r = s.getVm(VM);
      assertThat(r.replica().appliedGeneration()).isEqualTo(4);
      assertThat(r.replica().points()).extracting(RecoveryPointInfo::generation)
          .containsExactly(3L, 4L);
      assertThat(r.replica().points().get(0).undoBytes()).isZero();
      assertThat(undoFiles()).containsExactlyInAnyOrder("disk0-000000000004.undo",
          "disk1-000000000004.undo");
      assertThat(codeOf(() -> s.rollbackReplica(VM, 2))).isEqualTo(ErrorCode.INVALID_STATE);
      s.rollbackReplica(VM, 3);
      assertReplicaEquals(3);
    }
  }

  @Test
  void rewritingTheReplicaOutsideApplyDropsTheOlderPoints() throws IOException {
    protectAndCopy();
    Random rnd = new Random(10);
    for (int i = 0; i < 2; i++) {
      writeRandom(rnd);
      agents.p.replicate(VM);
    }
    assertThat(agents.s.getVm(VM).replica().points()).hasSize(3);
    // e.g. a resync: ranges copied straight onto the replica are not in any undo file
    agents.p.copyRange(VM, "disk0", 0, 4 * MIB);
    assertThat(agents.s.getVm(VM).replica().points()).extracting(RecoveryPointInfo::generation)
        .containsExactly(3L);
    assertThat(undoFiles()).isEmpty();
  }

  @Test
  void aReplicaPersistedBeforePointsExistedKeepsWorking() throws IOException {
    protectAndCopy();
    agents.close();
    // vm.json as an earlier version wrote it: no "points", and a "quiesce" hook set over the
    // API (ignored now: hooks are local configuration); the source with its target's "targetUrl"
    Path record = agents.secondary.diskImage(VM, "disk0").resolveSibling("vm.json");
    ObjectNode json = (ObjectNode) Json.MAPPER.readTree(record.toFile());
    json.putObject("quiesce").put("timeoutSeconds", 5).putArray("command").add("true");
    ((ObjectNode) json.get("replica")).remove("points");
    Json.MAPPER.writeValue(record.toFile(), json);
    Path source = agents.primary.diskImage(VM, "disk0").resolveSibling("vm.json");
    ObjectNode sourceJson = (ObjectNode) Json.MAPPER.readTree(source.toFile());
    ((ObjectNode) sourceJson.get("protection")).put("targetUrl", "http://127.0.0.1:1");
    Json.MAPPER.writeValue(source.toFile(), sourceJson);

    try (AgentPair again = AgentPair.start(tmp)) {
      agents = again;
      VmRecord r = again.s.getVm(VM);
      assertThat(r.replica().points()).isEmpty();
      assertThat(again.p.getVm(VM).protection().targetSite()).isEqualTo("secondary");
      // the source still knows the replica's old port: ship and apply by hand
      writeRandom(new Random(11));
      long g = swapAndShip();
      again.feed.applyLogs(VM, new ApplyRequest(g, Instant.now(), false, null));
      assertThat(again.s.getVm(VM).replica().points()).extracting(RecoveryPointInfo::generation)
          .containsExactly(1L, 2L);
      again.s.rollbackReplica(VM, 1);
      assertReplicaEquals(1);
    }
  }

  @Test
  void aRollbackWithoutAGenerationIsABadRequest() throws Exception {
    protectAndCopy();
    HttpResponse<String> response = RawHttp.send(agents.secondary, Identity.operator(), "POST",
        "/v1/replicas/" + VM + "/rollback", "{}");
    assertThat(response.statusCode()).isEqualTo(400);
    assertThat(response.body()).contains("BAD_REQUEST").contains("generation");
  }

  // ---------------------------------------------------------------------------------------------

  /** web01 with two small disks full of data, copied, merged and complete: point 1. */
  private void protectAndCopy() throws IOException {
    agents.createProtected(VM, 4 * MIB, 2 * MIB);
    VirtualDisk d0 = agents.primary.vms().get(VM).disk("disk0");
    VirtualDisk d1 = agents.primary.vms().get(VM).disk("disk1");
    writeRandom(new Random(1), d0, 8);
    writeRandom(new Random(2), d1, 8);
    agents.initialCopy(VM, "disk0", 4 * MIB, 4 * MIB, null);
    agents.initialCopy(VM, "disk1", 2 * MIB, 2 * MIB, null);
    assertThat(agents.p.replicate(VM).appliedGeneration()).isEqualTo(1);
    agents.p.completeInitialReplication(VM);
    capture(1);
  }

  private void writeRandom(Random rnd) throws IOException {
    for (VirtualDisk d : agents.primary.vms().get(VM).disks()) {
      writeRandom(rnd, d, 6);
    }
  }

  private static void writeRandom(Random rnd, VirtualDisk d, int writes) throws IOException {
    for (int i = 0; i < writes; i++) {
      byte[] data = new byte[4096 * (1 + rnd.nextInt(64))];
      rnd.nextBytes(data);
      long at = rnd.nextLong(d.size() - data.length) / 512 * 512;
      if (rnd.nextInt(5) == 0) {
        d.writeZeroes(at, data.length, false);
      } else {
        d.write(at, ByteBuffer.wrap(data), false);
      }
    }
  }

  /** Seals the next generation on the source by hand and stages it on the replica. */
  private long swapAndShip() throws IOException {
    long sealed = -1;
    for (VirtualDisk d : agents.primary.vms().get(VM).disks()) {
      sealed = d.withWritesHeld(() -> d.tracker().swap());
    }
    capture(sealed);
    for (String disk : DISKS) {
      agents.feed.sendLog(VM, disk, sealed, agents.primary.diskImage(VM, disk)
          .resolveSibling(HrlFormat.fileName(disk, sealed)));
    }
    return sealed;
  }

  private void deleteSourceLogs(long generation) throws IOException {
    for (VirtualDisk d : agents.primary.vms().get(VM).disks()) {
      d.tracker().deleteSealed(generation);
    }
  }

  private void capture(long generation) throws IOException {
    List<Path> copies = new ArrayList<>();
    for (String disk : DISKS) {
      Path copy = tmp.resolve("point-" + generation + "-" + disk + ".img");
      Files.copy(agents.primary.diskImage(VM, disk), copy, StandardCopyOption.REPLACE_EXISTING);
      copies.add(copy);
    }
    captured.put(generation, copies);
  }

  /** The replica's disks equal the source's at that point: qemu-img's verdict and the bytes. */
  private void assertReplicaEquals(long generation) throws IOException {
    for (int i = 0; i < DISKS.size(); i++) {
      Path expected = captured.get(generation).get(i);
      Path replica = agents.secondary.diskImage(VM, DISKS.get(i));
      if (Tools.find("qemu-img") != null) {
        compareRaw(expected.toString(), replica.toString()).assertOk();
      }
      assertThat(Files.mismatch(expected, replica)).as("%s at generation %d", DISKS.get(i),
          generation).isEqualTo(-1L);
    }
  }

  private List<String> undoFiles() throws IOException {
    Path dir = agents.secondary.diskImage(VM, "disk0").resolveSibling("undo");
    if (!Files.exists(dir)) {
      return List.of();
    }
    try (Stream<Path> files = Files.list(dir)) {
      return files.map(p -> p.getFileName().toString()).sorted().toList();
    }
  }

  private long sizeOfUndoFiles() throws IOException {
    Path dir = agents.secondary.diskImage(VM, "disk0").resolveSibling("undo");
    long total = 0;
    for (String name : undoFiles()) {
      total += Files.size(dir.resolve(name));
    }
    return total;
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
}
