package io.siterecovery.workers.cli;

import io.siterecovery.workflows.failback.FailbackStatus;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workers.dev.ProgressLine;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;

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
    b.append(String.format("%s: %s %s  %s -> %s%s%n", f.type() == FailoverType.TEST
            ? FailoverWorkflow.testWorkflowId(f.vm()) : FailoverWorkflow.workflowId(f.vm()),
        f.type(), f.state(), f.sourceSite(), f.targetSite(),
        f.recoveryPoint() == null ? "" : "  point " + f.recoveryPoint().id()));
    if (f.progress() != null) {
      b.append("  ").append(ProgressLine.of(f.progress())).append('\n');
    }
    if (f.test() != null) {
      b.append(testVm(f.test(), f.targetSite()));
    }
    if (f.pointsTried() != null && f.pointsTried().size() > 1) {
      b.append("  points tried: ").append(f.pointsTried().stream().map(p -> p.id()).toList())
          .append('\n');
    }
    if (f.fence() != null) {
      b.append("  source VM ").append(f.fence()).append('\n');
    }
    f.steps().forEach(s -> b.append("  ").append(s).append('\n'));
    if (f.error() != null) {
      b.append("  error: ").append(f.error()).append('\n');
    }
    return b.toString().stripTrailing();
  }

  static String of(ReprotectStatus r) {
    StringBuilder b = new StringBuilder();
    b.append(String.format("%s: %s  %s -> %s%s%n", ReprotectWorkflow.workflowId(r.vm()),
        r.state(), r.sourceSite(), r.targetSite(), r.mode() == null ? "" : "  " + r.mode()));
    if (r.progress() != null) {
      b.append("  ").append(ProgressLine.of(r.progress())).append('\n');
    }
    b.append(String.format("  changed since the failover %s, sent %s%n",
        Sizes.format(r.bytesChanged()), Sizes.format(r.bytesSent())));
    if (r.salvaged() != null) {
      b.append(String.format("  SALVAGED %s: %s in %d ranges the replica never got, on %s at %s"
          + " (./site-recovery salvage)%n", r.salvaged().id(), Sizes.format(r.salvaged().bytes()),
          r.salvaged().rangeCount(), r.salvaged().site(), r.salvaged().path()));
    }
    r.steps().forEach(s -> b.append("  ").append(s).append('\n'));
    if (r.error() != null) {
      b.append("  error: ").append(r.error()).append('\n');
    }
    return b.toString().stripTrailing();
  }

  static String of(FailbackStatus f) {
    StringBuilder b = new StringBuilder();
    b.append(String.format("%s: %s  %s -> home %s%n", FailbackWorkflow.workflowId(f.vm()),
        f.state(), f.fromSite(), f.homeSite()));
    f.steps().forEach(s -> b.append("  ").append(s).append('\n'));
    if (f.error() != null) {
      b.append("  error: ").append(f.error()).append('\n');
    }
    return b.toString().stripTrailing();
  }

  private static String testVm(FailoverStatus.TestVmStatus t, String site) {
    StringBuilder b = new StringBuilder();
    if (t.testVm() != null) {
      b.append(String.format("  test VM %s on %s, created %s%n", t.testVm(), site, t.createdAt()));
      t.exports().forEach(e -> b.append("    ").append(e).append('\n'));
    }
    if (t.cleanupDueAt() != null) {
      b.append(String.format("  cleans itself up at %s (maxTestDuration %s) unless "
          + "./site-recovery cleanup comes first%n", t.cleanupDueAt(),
          readable(t.maxTestDuration())));
    }
    if (!t.remaining().isEmpty()) {
      b.append("  ! not clean yet, still there: ").append(t.remaining()).append('\n');
    }
    if (t.cleanedUpBy() != null) {
      b.append("  cleanup by ").append(t.cleanedUpBy()).append('\n');
    }
    if (t.notes() != null) {
      b.append("  notes: ").append(t.notes()).append('\n');
    }
    return b.toString();
  }

  private static String readable(java.time.Duration d) {
    return d.toSeconds() % 86_400 == 0 ? d.toDays() + " days" : d.toString();
  }
}
