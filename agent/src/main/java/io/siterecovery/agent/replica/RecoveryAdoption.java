package io.siterecovery.agent.replica;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentMessages.PromoteResult;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.AdoptedDisk;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.PromoteIntent;
import io.siterecovery.agent.vm.ChangedRanges;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.DiskSpec;
import io.siterecovery.agent.vm.VmRecord.Power;
import io.siterecovery.agent.vm.VmRecord.Role;
import io.siterecovery.agent.vm.VmRecord.SourceProtection;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * A VM recovered from a bucket, committed on the recovery host: it ends exactly as
 * {@link ReplicaRuns#promote} leaves a replica after a failover commit, so Reprotect, reverse
 * replication, resync and Failback treat both alike: the primary, running, protected (pending)
 * towards its old source, its writes tracked, and the ranges it wrote since the point kept as
 * {@link ChangedRanges} (here the chunks its ledgers mark written: chunk-granular, honest).
 */
public final class RecoveryAdoption implements BucketRecoveries.Adopter {
  private final VmHost host;

  public RecoveryAdoption(VmHost host) {
    this.host = host;
  }

  @Override
  public Path vmDir(String vm) {
    return host.vmDir(vm);
  }

  @Override
  public PromoteResult adopt(PromoteIntent intent) throws IOException {
    Optional<Vm> existing = host.find(intent.vm());
    if (existing.isPresent()) {
      return adopted(intent.vm(), intent.oldSource()).orElseThrow(() -> new AgentException(
          ErrorCode.VM_EXISTS, "this host already has a VM named " + intent.vm()));
    }
    Path dir = host.vmDir(intent.vm());
    for (AdoptedDisk d : intent.disks()) {
      ChangedRanges.record(dir, d.name(), d.changedRanges());
    }
    Vm vm = host.adopt(new VmRecord(intent.vm(), Role.PRIMARY, Power.RUNNING,
        intent.disks().stream().map(d -> new DiskSpec(d.name(), d.sizeBytes(), d.id())).toList(),
        new SourceProtection(intent.oldSource(), false), null, intent.home()));
    return result(vm);
  }

  @Override
  public Optional<PromoteResult> adopted(String vmName, String oldSource) throws IOException {
    Optional<Vm> vm = host.find(vmName);
    if (vm.isEmpty()) {
      return Optional.empty();
    }
    VmRecord r = vm.get().record();
    if (r.role() != Role.PRIMARY || !ChangedRanges.recorded(vm.get())
        || r.protection() == null || !r.protection().targetSite().equals(oldSource)) {
      throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vmName + " on " + host.site()
          + " is no VM committed from a bucket recovery towards " + oldSource + " (it is a "
          + r.role() + (r.protection() == null ? "" : " protected towards "
              + r.protection().targetSite()) + ")");
    }
    return Optional.of(result(vm.get()));
  }

  private static PromoteResult result(Vm vm) throws IOException {
    return new PromoteResult(vm.name(), vm.record().protection().targetSite(),
        ChangedRanges.bytes(vm));
  }
}
