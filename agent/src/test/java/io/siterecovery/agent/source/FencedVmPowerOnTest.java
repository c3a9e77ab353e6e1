package io.siterecovery.agent.source;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.Power;
import io.siterecovery.agent.vm.VmRecord.Role;
import java.io.IOException;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The split-brain guard on the old source: once a failover has fenced it, nothing powers it on,
 * neither the agent's own code path nor an operator's HTTP call, until Reprotect has made it the
 * replica of the active site and a Failback has made it the primary again.
 */
class FencedVmPowerOnTest {
  private static final long MIB = 1L << 20;
  private static final String VM = "web01";
  private static final String NAMING_THE_FENCE = "VM web01 failed over to another site and is "
      + "fenced on primary; it runs here again only through Reprotect and Failback";

  @TempDir Path tmp;
  private AgentPair agents;

  @BeforeEach
  void failOverAndFence() throws IOException {
    agents = AgentPair.start(tmp);
    agents.createProtected(VM, 8 * MIB);
    agents.initialCopy(VM, "disk0", 8 * MIB, 4 * MIB, null);
    agents.p.replicate(VM);
    agents.p.completeInitialReplication(VM);
    // an unplanned failover whose source still answers: fenced (off, then marked), replica up
    agents.p.setPower(VM, Power.OFF);
    agents.p.setRole(VM, Role.FAILED_OVER);
    agents.s.startReplica(VM, agents.s.getVm(VM).replica().appliedGeneration(), "unplanned");
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  @Test
  void aFencedVmDoesNotPowerOnThroughTheHttpRouteNamingTheFence() {
    assertThatThrownBy(() -> agents.p.setPower(VM, Power.RUNNING))
        .isInstanceOfSatisfying(AgentException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE))
        .hasMessageContaining(NAMING_THE_FENCE);
    VmRecord after = agents.p.getVm(VM);
    assertThat(after.power()).isEqualTo(Power.OFF);
    assertThat(after.role()).isEqualTo(Role.FAILED_OVER);
  }

  @Test
  void aFencedVmDoesNotPowerOnThroughTheAgentsOwnCodePath() {
    VmHost host = agents.primary.vms();
    assertThatThrownBy(() -> host.setPower(host.get(VM), Power.RUNNING))
        .isInstanceOfSatisfying(AgentException.class,
            e -> assertThat(e.code()).isEqualTo(ErrorCode.INVALID_STATE))
        .hasMessage(NAMING_THE_FENCE);
    assertThat(host.get(VM).record().power()).isEqualTo(Power.OFF);
  }

  @Test
  void onlyReprotectThenFailbackLetItRunAgain() {
    agents.s.promoteReplica(VM); // the commit
    agents.p.reverse(VM, "secondary"); // Reprotect: the old copy becomes the replica
    assertThat(agents.p.getVm(VM).role()).isEqualTo(Role.REPLICA);
    assertThatThrownBy(() -> agents.p.setPower(VM, Power.RUNNING))
        .as("a replica does not run as the VM either").isInstanceOf(AgentException.class);
    agents.s.enableProtection(VM, "primary");
    agents.s.sendChanged(VM, "disk0", null);
    agents.s.replicate(VM);
    agents.s.completeInitialReplication(VM);

    // Failback: a planned failover home
    agents.s.setPower(VM, Power.OFF);
    agents.s.replicate(VM);
    agents.p.startReplica(VM, agents.p.getVm(VM).replica().appliedGeneration(), "failback");
    agents.p.promoteReplica(VM);
    agents.s.setRole(VM, Role.FAILED_OVER);

    agents.p.setPower(VM, Power.RUNNING);
    VmRecord home = agents.p.getVm(VM);
    assertThat(home.role()).isEqualTo(Role.PRIMARY);
    assertThat(home.power()).isEqualTo(Power.RUNNING);
    assertThatThrownBy(() -> agents.s.setPower(VM, Power.RUNNING))
        .hasMessageContaining("fenced on secondary");
  }
}
