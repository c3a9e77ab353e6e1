package io.siterecovery.workers.cli;

import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workflows.protection.ProtectionStatus;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** {@code status} without a VM: one line per VM of every site, as its protection reports it. */
final class StatusTable {
  private StatusTable() {}

  static final String UNPROTECTED = "UNPROTECTED";

  /**
   * One VM. {@code sourceSite}/{@code targetSite} as its protection runs (for an unprotected VM:
   * the site it runs on, no target); {@code error}: why its protection could not be read.
   */
  record Row(String vm, String sourceSite, String targetSite, String state, String health,
      Long rpoSeconds, String latestPoint, Instant latestPointTime, Instant nextCycleAt,
      String error) {

    static Row of(ProtectionStatus s) {
      return new Row(s.vm(), s.sourceSite(), s.targetSite(), s.state().name(),
          s.health().name(), s.rpoSeconds(),
          s.latestRecoveryPoint() == null ? null : s.latestRecoveryPoint().id(),
          s.latestRecoveryPoint() == null ? null : s.latestRecoveryPoint().time(),
          s.nextCycleAt(), null);
    }

    static Row unprotected(String vm, String site) {
      return new Row(vm, site, null, UNPROTECTED, null, null, null, null, null, null);
    }

    static Row unreadable(String vm, String site, String error) {
      return new Row(vm, site, null, "UNKNOWN", null, null, null, null, null, error);
    }
  }

  /** The JSON document: every row, and each site whose agent could not be asked. */
  record Report(List<Row> vms, Map<String, String> unreachableSites) {}

  /**
   * Each VM once, on the site it runs on: a replica is the same VM, listed where its source is
   * unless only the replica is left (its source site unreachable, say).
   */
  static Map<String, String> runningSites(Map<String, List<VmRecord>> inventories) {
    Map<String, String> sites = new TreeMap<>();
    inventories.forEach((site, vms) -> vms.forEach(vm -> {
      if (vm.role() != VmRecord.Role.REPLICA) {
        sites.put(vm.name(), site);
      } else {
        sites.putIfAbsent(vm.name(), site);
      }
    }));
    return sites;
  }

  static String text(Report report, Instant now) {
    List<String[]> lines = new ArrayList<>();
    lines.add(new String[] {"VM", "SITE", "STATE", "HEALTH", "RPO", "LATEST POINT",
        "NEXT CYCLE"});
    for (Row r : report.vms()) {
      lines.add(new String[] {r.vm(),
          r.targetSite() == null ? dash(r.sourceSite()) : r.sourceSite() + "->" + r.targetSite(),
          r.state(), dash(r.health()), r.rpoSeconds() == null ? "-" : r.rpoSeconds() + " s",
          r.latestPoint() == null ? "-" : r.latestPoint() + " (" + ago(r.latestPointTime(), now)
              + ")",
          r.nextCycleAt() == null ? "-" : in(r.nextCycleAt(), now)});
    }
    int[] width = new int[lines.get(0).length];
    for (String[] line : lines) {
      for (int i = 0; i < line.length; i++) {
        width[i] = Math.max(width[i], line[i].length());
      }
    }
    StringBuilder b = new StringBuilder();
    for (String[] line : lines) {
      for (int i = 0; i < line.length; i++) {
        b.append(i == line.length - 1 ? line[i] : String.format("%-" + (width[i] + 2) + "s",
            line[i]));
      }
      b.append('\n');
    }
    if (report.vms().isEmpty() && report.unreachableSites().isEmpty()) {
      b.append("(no VMs on any site: ./site-recovery vm create NAME --site primary --disk 1G)\n");
    }
    report.vms().stream().filter(r -> r.error() != null).forEach(r -> b.append("! ")
        .append(r.vm()).append(": ").append(r.error()).append('\n'));
    report.unreachableSites().forEach((site, why) -> b.append("! site ").append(site)
        .append(" not listed: ").append(why).append('\n'));
    return b.toString().stripTrailing();
  }

  private static String ago(Instant t, Instant now) {
    return t == null ? "-" : seconds(Duration.between(t, now)) + " ago";
  }

  private static String in(Instant t, Instant now) {
    Duration d = Duration.between(now, t);
    return d.isNegative() || d.isZero() ? "due now" : "in " + seconds(d);
  }

  /** 42 s, 3 min, 5 h: as precise as a glance at a table needs. */
  private static String seconds(Duration d) {
    long s = Math.max(0, d.toSeconds());
    return s < 120 ? s + " s" : s < 7200 ? s / 60 + " min" : s / 3600 + " h";
  }

  private static String dash(String s) {
    return s == null ? "-" : s;
  }
}
