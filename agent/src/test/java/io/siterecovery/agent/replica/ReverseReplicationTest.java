package io.siterecovery.agent.replica;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.api.AgentMessages.ReverseResult;
import io.siterecovery.agent.api.AgentMessages.SalvageInfo;
import io.siterecovery.agent.api.AgentMessages.SalvagedRange;
import io.siterecovery.agent.api.AgentMessages.SendChangedResult;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.HrlFile;
import io.siterecovery.agent.testing.ResyncRun;
import io.siterecovery.agent.vm.VmRecord;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.BitSet;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Reverse replication as the Reprotect runbook drives it, judged by {@code qemu-img compare} of
 * the two sites' images: after a planned failover only what changed travels; after an unplanned
 * one the old source's unreplicated writes are saved before a checksum resync overwrites them.
 */
class ReverseReplicationTest {
  private static final long MIB = 1L << 20;
  private static final long DISK = 32 * MIB;
  private static final String VM = "web01";

  @TempDir Path tmp;
  private AgentPair agents;

  @BeforeEach
  void start() throws IOException {
    agents = AgentPair.start(tmp);
    agents.createProtected(VM, DISK);
    agents.initialCopy(VM, "disk0", DISK, 8 * MIB, null);
    agents.p.replicate(VM);
    agents.p.completeInitialReplication(VM);
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  private String uri(boolean primary) {
    return (primary ? agents.primary : agents.secondary).nbdUri(VM, "disk0");
  }

  /** Fails over to the secondary's latest point and commits, as the Failover runbook does. */
  private void failOverAndCommit() {
    long point = agents.s.getVm(VM).replica().appliedGeneration();
    agents.s.startReplica(VM, point, "failover");
  }

  private void commit() {
    agents.s.promoteReplica(VM);
    agents.p.setRole(VM, VmRecord.Role.FAILED_OVER);
  }

  @Test
  void afterAPlannedFailoverOnlyWhatWasWrittenOnTheNewSiteTravelsBack() throws IOException {
    assumeInstalled("qemu-img", "qemu-io");
    qemuIo(uri(true), "write -P 0x11 0 16M").assertOk();
    agents.p.replicate(VM);
    agents.p.setPower(VM, VmRecord.Power.OFF);
    agents.p.replicate(VM); // the planned failover's final sync
    failOverAndCommit();
    long written = 3 * MIB;
    qemuIo(uri(false), "write -P 0x21 1M 1M", "write -P 0x22 20M 1M").assertOk();
    commit();
    qemuIo(uri(false), "write -P 0x23 30M 1M").assertOk(); // after the commit: tracked

    ReverseResult reversed = agents.p.reverse(VM, "secondary");
    assertThat(reversed.salvage()).as("the old source had shipped everything").isNull();
    assertThat(agents.p.reverse(VM, "secondary")).as("repeated").isEqualTo(reversed);
    assertThatThrownBy(() -> agents.p.setPower(VM, VmRecord.Power.RUNNING))
        .isInstanceOf(AgentException.class);

    assertThat(agents.s.enableProtection(VM, "primary").initialComplete()).isFalse();
    SendChangedResult seeded = agents.s.sendChanged(VM, "disk0", null);
    ReplicationResult logs = agents.s.replicate(VM);
    agents.s.completeInitialReplication(VM);

    long sent = seeded.bytesSent() + logs.bytesShipped();
    assertThat(sent).as("bytes sent back (ranges %d + logs %d) against %d written",
        seeded.bytesSent(), logs.bytesShipped(), written).isLessThanOrEqualTo(written * 11 / 10);
    compareRaw(agents.replicaImage(VM, "disk0"), agents.primaryImage(VM, "disk0")).assertOk();
    assertThat(agents.p.getVm(VM).replica().initialComplete()).isTrue();

    // and protection goes on in the new direction
    qemuIo(uri(false), "write -P 0x24 4M 1M").assertOk();
    assertThat(agents.s.replicate(VM).appliedGeneration()).isGreaterThan(
        logs.appliedGeneration());
    compareRaw(agents.replicaImage(VM, "disk0"), agents.primaryImage(VM, "disk0")).assertOk();
  }

  @Test
  void afterAnUnplannedFailoverTheOldSourcesLostWritesAreSavedThenResynced() throws IOException {
    assumeInstalled("qemu-img", "qemu-io");
    qemuIo(uri(true), "write -P 0x11 0 8M").assertOk();
    Instant lastPointTaken = Instant.now();
    agents.p.replicate(VM);
    // the site is lost before these reach the replica
    Instant lostWritesBegin = Instant.now();
    qemuIo(uri(true), "write -P 0x66 5M 1M", "write -P 0x67 12M 512k").assertOk();
    Instant lostWritesEnd = Instant.now();
    failOverAndCommit();
    qemuIo(uri(false), "write -P 0x21 20M 1M").assertOk();
    commit();

    // the old site comes back, its VM still on: it must be shut down first
    agents.p.setRole(VM, VmRecord.Role.PRIMARY);
    assertThatThrownBy(() -> agents.p.reverse(VM, "secondary"))
        .isInstanceOfSatisfying(AgentException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE))
        .hasMessageContaining("is running on primary");
    agents.p.setPower(VM, VmRecord.Power.OFF);
    SalvageInfo salvage = agents.p.reverse(VM, "secondary").salvage();
    assertThat(salvage).isNotNull();
    assertThat(salvage.bytes()).isEqualTo(MIB + 512 * 1024);
    assertThat(salvage.ranges()).containsExactly(new SalvagedRange("disk0", 5 * MIB, MIB),
        new SalvagedRange("disk0", 12 * MIB, 512 * 1024));
    assertThat(salvage.rangeCount()).isEqualTo(2);
    assertThat(Path.of(salvage.path())).isDirectory();
    assertThat(agents.p.salvaged()).containsExactly(salvage);
    // the span: from the log's start (the last replicated point) to the last lost write;
    // file times are coarser than the clock, hence the second either side
    assertThat(salvage.firstWrite()).isBetween(lastPointTaken.minusSeconds(1),
        lostWritesEnd.plusSeconds(1));
    assertThat(salvage.lastWrite()).isBetween(lostWritesBegin.minusSeconds(1),
        lostWritesEnd.plusSeconds(1)).isAfterOrEqualTo(salvage.firstWrite());
    assertSalvagedExactlyTheLostWrites(Path.of(salvage.path()), salvage);

    agents.s.enableProtection(VM, "primary");
    long generation = agents.s.beginResync(VM).generation();
    ResyncRun.Totals totals = ResyncRun.disk(agents.s, VM, "disk0", 0, 256, 64 * 1024, null,
        null);
    agents.s.completeResync(VM);
    agents.s.replicate(VM);
    agents.s.completeInitialReplication(VM);
    assertThat(generation).isPositive();
    assertThat(totals.bytesSent()).as("the two lost ranges and the new site's write")
        .isLessThanOrEqualTo(4 * MIB);
    compareRaw(agents.replicaImage(VM, "disk0"), agents.primaryImage(VM, "disk0")).assertOk();

    agents.p.deleteSalvaged(salvage.id());
    assertThat(agents.p.salvaged()).isEmpty();
    assertThat(Path.of(salvage.path())).doesNotExist();
  }

  /**
   * Read with the naive reader, the salvaged logs hold the two lost writes byte for byte and
   * nothing else: 0x66 over [5M, 6M), 0x67 over [12M, 12.5M).
   */
  private static void assertSalvagedExactlyTheLostWrites(Path dir, SalvageInfo salvage)
      throws IOException {
    byte[] image = new byte[(int) DISK];
    BitSet written = new BitSet((int) DISK);
    List<Path> logs;
    try (Stream<Path> files = Files.list(dir)) {
      logs = files.filter(f -> f.getFileName().toString().endsWith(".hrl")).sorted().toList();
    }
    assertThat(logs).hasSize(salvage.logs());
    long records = 0;
    for (Path log : logs) {
      for (HrlFile.Entry e : HrlFile.entries(log)) {
        assertThat(e.isWrite()).as("a write record in %s", log.getFileName()).isTrue();
        System.arraycopy(e.data(), 0, image, (int) e.offset(), e.length());
        written.set((int) e.offset(), (int) e.offset() + e.length());
        records++;
      }
    }
    assertThat(records).isEqualTo(salvage.records());
    BitSet lost = new BitSet((int) DISK);
    lost.set((int) (5 * MIB), (int) (6 * MIB));
    lost.set((int) (12 * MIB), (int) (12 * MIB + 512 * 1024));
    assertThat(written).as("the bytes the salvaged logs cover").isEqualTo(lost);
    for (int i = written.nextSetBit(0); i >= 0; i = written.nextSetBit(i + 1)) {
      byte expected = i < 6 * MIB ? (byte) 0x66 : (byte) 0x67;
      if (image[i] != expected) {
        throw new AssertionError("salvaged byte at " + i + " is " + image[i] + ", the lost write"
            + " there was " + expected);
      }
    }
  }
}
