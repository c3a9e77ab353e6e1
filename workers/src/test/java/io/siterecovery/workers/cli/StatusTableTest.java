package io.siterecovery.workers.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.protection.RecoveryPoint;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/**
 * {@code status} without a VM: every VM once, aligned, with times a person reads at a glance,
 * its statuses read several at a time.
 */
class StatusTableTest {
  private static final Instant NOW = Instant.parse("2026-11-29T10:00:00Z");

  private static VmRecord vm(String name, VmRecord.Role role) {
    return new VmRecord(name, role, VmRecord.Power.RUNNING, List.of(), null, null, "primary");
  }

  @Test
  void aReplicaIsListedWhereItsSourceRunsUnlessItIsAllThereIs() {
    Map<String, String> sites = StatusTable.runningSites(new java.util.LinkedHashMap<>(Map.of(
        "primary", List.of(vm("web01", VmRecord.Role.PRIMARY)),
        "secondary", List.of(vm("web01", VmRecord.Role.REPLICA),
            vm("db01", VmRecord.Role.FAILED_OVER), vm("orphan", VmRecord.Role.REPLICA)))));
    assertThat(sites).containsExactly(Map.entry("db01", "secondary"),
        Map.entry("orphan", "secondary"), Map.entry("web01", "primary"));
  }

  /**
   * The table reads its VMs' statuses eight at a time: the first eight queries wait for one
   * another (so eight really run at once), no more ever run together, and the rows keep the VMs'
   * order whatever order the answers come in.
   */
  @Test
  void statusesAreReadEightAtATimeAndListedInTheVmsOrder() {
    AtomicInteger running = new AtomicInteger();
    AtomicInteger most = new AtomicInteger();
    CountDownLatch firstEight = new CountDownLatch(8);
    List<Integer> vms = IntStream.range(0, 40).boxed().toList();
    List<String> rows = OperatorCommands.eachInParallel(vms, vm -> {
      most.accumulateAndGet(running.incrementAndGet(), Math::max);
      firstEight.countDown();
      try {
        assertThat(firstEight.await(30, TimeUnit.SECONDS)).as("eight at once").isTrue();
      } catch (InterruptedException e) {
        throw new IllegalStateException(e);
      }
      running.decrementAndGet();
      return "vm" + vm;
    });
    assertThat(rows).containsExactlyElementsOf(vms.stream().map(vm -> "vm" + vm).toList());
    assertThat(most.get()).isEqualTo(8);
    assertThatThrownBy(() -> OperatorCommands.eachInParallel(vms, vm -> {
      throw new IllegalArgumentException("site of vm" + vm + " refused");
    })).isInstanceOf(IllegalArgumentException.class).hasMessageContaining("refused");
  }

  @Test
  void oneAlignedLinePerVmWithRpoLatestPointAndNextCycle() {
    RecoveryPoint rp = RecoveryPoint.of(7, NOW.minusSeconds(12), false);
    ProtectionStatus web = new ProtectionStatus("web01", "default", ProtectionState.PROTECTED,
        Health.WARNING, List.of(), "primary", "secondary", 12L, rp, List.of(rp), null, null, null,
        List.of(), 3, 0, 0, NOW.minusSeconds(12), NOW.plusSeconds(18));
    StatusTable.Report report = new StatusTable.Report(List.of(StatusTable.Row.of(web),
        StatusTable.Row.unprotected("db01", "primary"),
        StatusTable.Row.unreadable("app01", "secondary", "deadline exceeded")),
        Map.of("tertiary", "connection refused"));
    assertThat(StatusTable.text(report, NOW).lines().toList()).containsExactly(
        "VM     SITE                STATE        HEALTH   RPO   LATEST POINT     NEXT CYCLE",
        "web01  primary->secondary  PROTECTED    WARNING  12 s  rp-7 (12 s ago)  in 18 s",
        "db01   primary             UNPROTECTED  -        -     -                -",
        "app01  secondary           UNKNOWN      -        -     -                -",
        "! app01: deadline exceeded",
        "! site tertiary not listed: connection refused");
  }

  @Test
  void noVmsIsAHintOnlyWhenEverySiteAnswered() {
    assertThat(StatusTable.text(new StatusTable.Report(List.of(), Map.of()), NOW))
        .endsWith("(no VMs on any site: ./site-recovery vm create NAME --site primary --disk 1G)");
    assertThat(StatusTable.text(new StatusTable.Report(List.of(), Map.of("primary",
        "connection refused")), NOW)).doesNotContain("no VMs")
        .endsWith("! site primary not listed: connection refused");
  }
}
