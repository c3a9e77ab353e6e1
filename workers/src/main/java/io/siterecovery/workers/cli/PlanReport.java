package io.siterecovery.workers.cli;

import io.siterecovery.workflows.plan.PlanStatus;
import io.siterecovery.workflows.plan.PlanStatus.ActionStatus;
import io.siterecovery.workflows.plan.PlanStatus.GroupStatus;
import io.siterecovery.workflows.plan.PlanStatus.VmStatus;

/** A plan run as a person reads it: the validation table, and the drill report in Markdown. */
final class PlanReport {
  private PlanReport() {}

  static String validation(PlanStatus s) {
    StringBuilder b = new StringBuilder();
    b.append("plan ").append(s.plan()).append(": ").append(s.failures().isEmpty()
        ? "no problem found" : s.failures().size() + " problem(s)").append('\n');
    if (!s.failures().isEmpty()) {
      b.append("| # | problem |\n|---|---|\n");
      for (int i = 0; i < s.failures().size(); i++) {
        b.append("| ").append(i + 1).append(" | ").append(s.failures().get(i)).append(" |\n");
      }
    }
    return b.toString().stripTrailing();
  }

  static String markdown(PlanStatus s) {
    StringBuilder b = new StringBuilder();
    b.append("# Recovery plan ").append(s.plan()).append(": ").append(s.operation()).append(' ')
        .append(s.state()).append("\n\n");
    b.append("- started ").append(s.startedAt()).append(s.endedAt() == null ? ""
        : ", ended " + s.endedAt()).append('\n');
    if (s.rtoSeconds() != null) {
      b.append("- achieved RTO: ").append(s.rtoSeconds())
          .append(" s (start of the run until the last VM ran)\n");
    }
    if (s.commonInstant() != null) {
      b.append("- LATEST_COMMON instant: ").append(s.commonInstant()).append('\n');
    }
    if (s.awaitingStep() != null) {
      b.append("- waiting for approval of: ").append(s.awaitingStep()).append('\n');
    }
    for (GroupStatus g : s.groups()) {
      b.append("\n## Group ").append(g.name()).append(": ").append(g.state()).append("\n\n");
      b.append("| VM | workflow | state | point | data loss (s) | started | ready | ended |"
          + " error |\n|---|---|---|---|---|---|---|---|---|\n");
      for (VmStatus v : g.vms()) {
        b.append(String.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s |%n", v.vm(),
            dash(v.workflowId()), v.state(), dash(v.recoveryPoint()), dash(v.dataLossSeconds()),
            dash(v.startedAt()), dash(v.readyAt()), dash(v.endedAt()), dash(v.error())));
      }
      if (!g.actions().isEmpty()) {
        b.append("\n| when | action | state | site | exit | approved by | started | ended |\n"
            + "|---|---|---|---|---|---|---|---|\n");
        for (ActionStatus a : g.actions()) {
          b.append(String.format("| %s | %s | %s | %s | %s | %s | %s | %s |%n", a.when(),
              a.label(), a.state(), dash(a.site()), dash(a.exitCode()), dash(a.approvedBy()),
              dash(a.startedAt()), dash(a.endedAt())));
        }
      }
    }
    if (!s.failures().isEmpty()) {
      b.append("\n## Failures\n\n");
      s.failures().forEach(f -> b.append("- ").append(f).append('\n'));
    }
    b.append("\n## Steps\n\n");
    s.steps().forEach(st -> b.append("- ").append(st).append('\n'));
    return b.toString().stripTrailing();
  }

  private static String dash(Object o) {
    return o == null ? "-" : o.toString().replace("|", "\\|").replace("\n", " ");
  }
}
