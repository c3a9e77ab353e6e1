package io.siterecovery.agent.server;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import java.util.regex.Matcher;

/**
 * Who may call a route. The operator (worker, CLI) drives the agent; a peer site only feeds the
 * replicas whose source it is, and may read nothing else. Checked on every request before the
 * route runs; a refusal is 403 with the reason, and a log line.
 */
@FunctionalInterface
interface Access {
  void check(Identity caller, Matcher path);

  /** Any authenticated identity: answers that tell nothing about VMs (health). */
  Access ANY = (caller, path) -> {};

  /**
   * Reading the metrics: the operator, or the monitor identity that a scraper holds. Metrics name
   * VMs and disks and tell how far behind replication is, so a peer site may not read them; the
   * monitor may read nothing else (every other rule asks for the operator or a site).
   */
  Access MONITOR = (caller, path) -> {
    if (!caller.isOperator() && !caller.isMonitor()) {
      throw forbidden(caller + " may not read metrics: only the operator and the monitor may");
    }
  };

  Access OPERATOR = (caller, path) -> {
    if (!caller.isOperator()) {
      throw forbidden(caller + " may not call this endpoint: it is the operator's");
    }
  };

  /**
   * The peer site that is the replication source of the replica named by the path's first group:
   * the replica exists on this agent, is a replica, and records the caller's site as its source.
   */
  static Access replicaSource(VmHost host) {
    return (caller, path) -> requireSourceOf(host, caller, path.group(1));
  }

  static void requireSourceOf(VmHost host, Identity caller, String vm) {
    String site = caller.siteName().orElseThrow(() ->
        forbidden(caller + " may not feed replicas: only the replica's source site may"));
    // A source whose replica is gone must learn that (it is not retried), so absence is told
    // to any site; what exists is told only to its source.
    VmRecord record = host.find(vm).map(v -> v.record()).orElseThrow(() -> new AgentException(
        ErrorCode.VM_NOT_FOUND, "site " + host.site() + " has no replica named '" + vm + "'"));
    if (record.role() != VmRecord.Role.REPLICA || record.replica() == null
        || !site.equals(record.replica().sourceSite())) {
      throw forbidden(caller + " is not the replication source of a replica named '" + vm
          + "' on site " + host.site());
    }
  }

  /**
   * The peer site at the other end of the VM named by the path's first group: the source of a
   * replica here, or the site a primary here replicates (or will replicate back) to. It may ask
   * whether its own copy must be fenced, and nothing more. Of a VM recovered from a bucket
   * here ({@code recoveredHere}, not yet committed), any site may ask.
   */
  static Access partnerOf(VmHost host, java.util.function.Predicate<String> recoveredHere) {
    return (caller, path) -> {
      String site = caller.siteName().orElseThrow(() ->
          forbidden(caller + " is not a site"));
      if (host.find(path.group(1)).isEmpty() && recoveredHere.test(path.group(1))) {
        // A VM recovered from a bucket records no partner (the bucket names no source), so any
        // site may ask whether it runs here: the answer is one bit, and a lost source needs it.
        return;
      }
      VmRecord r = host.find(path.group(1)).map(v -> v.record()).orElseThrow(() ->
          new AgentException(ErrorCode.VM_NOT_FOUND, "site " + host.site() + " has no VM named '"
              + path.group(1) + "'"));
      boolean partner = (r.replica() != null && site.equals(r.replica().sourceSite()))
          || (r.protection() != null && site.equals(r.protection().targetSite()));
      if (!partner) {
        throw forbidden(caller + " is not the replication partner of VM '" + path.group(1)
            + "' on site " + host.site());
      }
    };
  }

  static AgentException forbidden(String reason) {
    return new AgentException(ErrorCode.FORBIDDEN, reason);
  }
}
