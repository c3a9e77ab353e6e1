package io.siterecovery.workers.cli;

import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workers.dev.ProgressLine;
import io.siterecovery.workflows.protection.ProtectionStatus;

/** Human-readable renderings of the status queries. */
final class StatusText {
  private StatusText() {}

  static String of(ProtectionStatus s) {
    StringBuilder b = new StringBuilder();
    b.append(String.format("%s: %s  health %s  %s -> %s  policy %s%n", s.vm(), s.state(),
        s.health(), s.sourceSite(), s.targetSite(), s.policy()));
    s.healthReasons().forEach(r -> b.append("  ! ").append(r).append('\n'));
    if (s.progress() != null) {
      b.append("  ").append(ProgressLine.of(s.progress())).append('\n');
    }
    if (s.latestRecoveryPoint() != null) {
      b.append(String.format("  latest recovery point %s at %s, RPO %s s%n",
          s.latestRecoveryPoint().id(), s.latestRecoveryPoint().time(),
          s.rpoSeconds() == null ? "-" : s.rpoSeconds()));
    }
    if (!s.recoveryPoints().isEmpty()) {
      b.append("  recovery points: ").append(s.recoveryPoints().stream()
          .map(p -> p.id() + (p.appConsistent() ? "(app)" : "")).toList()).append('\n');
    }
    s.notes().forEach(n -> b.append("  - ").append(n).append('\n'));
    b.append(String.format("  delta cycles %d (failed %d), shipped %s", s.deltaCycles(),
        s.failedCycles(), Sizes.format(s.bytesShipped())));
    return b.toString();
  }


  static String of(FailoverStatus f) {
    StringBuilder b = new StringBuilder();
    b.append(String.format("failover-%s: %s %s  %s -> %s%s%n", f.vm(), f.type(), f.state(),
        f.sourceSite(), f.targetSite(),
        f.recoveryPoint() == null ? "" : "  point " + f.recoveryPoint().id()));
    f.steps().forEach(s -> b.append("  ").append(s).append('\n'));
    if (f.error() != null) {
      b.append("  error: ").append(f.error()).append('\n');
    }
    return b.toString().stripTrailing();
  }
}
