package io.siterecovery.agent.source;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.Peers;
import io.siterecovery.agent.api.AgentMessages.FenceCheck;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.Power;
import io.siterecovery.agent.vm.VmRecord.Role;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * An agent that comes back after its site was lost may find its VMs failed over elsewhere while
 * it was away, with the fence the failover owed them not yet applied. Before it serves anything,
 * it asks each protected VM's partner site whether the VM runs there, and fences its own copy if
 * so (off, and power-on refused), so two copies never run. A partner that does not answer is
 * logged and skipped: the failover that owes the fence keeps retrying it.
 */
public final class FenceAtStart {
  private static final Logger log = LoggerFactory.getLogger(FenceAtStart.class);

  private FenceAtStart() {}

  public static void apply(VmHost host, Peers peers) {
    for (VmRecord r : host.list()) {
      if (r.role() != Role.PRIMARY || r.protection() == null) {
        continue;
      }
      String partner = r.protection().targetSite();
      try {
        FenceCheck check = peers.client(partner).fenceCheck(r.name());
        if (check.fence()) {
          Vm vm = host.get(r.name());
          host.setPower(vm, Power.OFF);
          host.update(vm, rec -> rec.withRole(Role.FAILED_OVER));
          log.warn("[{}] VM {} fenced as this agent started: {}; it runs here again only "
              + "through Reprotect and Failback", host.site(), r.name(), check.reason());
        }
      } catch (AgentException | IOException e) {
        log.info("[{}] could not ask {} whether VM {} failed over there ({}); the failover that "
            + "would owe it a fence retries it", host.site(), partner, r.name(), e.getMessage());
      }
    }
  }
}
