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

  /** The same report as a self-contained HTML page, for an auditor's folder. */
  static String html(PlanStatus s) {
    StringBuilder b = new StringBuilder();
    b.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Recovery plan ")
        .append(esc(s.plan())).append("</title><style>body{font-family:sans-serif}"
            + "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px}"
            + "</style></head><body>\n");
    b.append("<h1>Recovery plan ").append(esc(s.plan())).append(": ").append(s.operation())
        .append(' ').append(s.state()).append("</h1>\n<ul><li>started ").append(s.startedAt())
        .append(s.endedAt() == null ? "" : ", ended " + s.endedAt()).append("</li>");
    if (s.rtoSeconds() != null) {
      b.append("<li>achieved RTO: ").append(s.rtoSeconds()).append(" s</li>");
    }
    if (s.commonInstant() != null) {
      b.append("<li>LATEST_COMMON instant: ").append(s.commonInstant()).append("</li>");
    }
    b.append("</ul>\n");
    for (GroupStatus g : s.groups()) {
      b.append("<h2>Group ").append(esc(g.name())).append(": ").append(g.state())
          .append("</h2>\n");
      row(b, "th", "VM", "workflow", "state", "point", "data loss (s)", "started", "ready",
          "ended", "error");
      for (VmStatus v : g.vms()) {
        row(b, "td", v.vm(), v.workflowId(), v.state(), v.recoveryPoint(), v.dataLossSeconds(),
            v.startedAt(), v.readyAt(), v.endedAt(), v.error());
      }
      b.append("</table>\n");
      if (!g.actions().isEmpty()) {
        row(b, "th", "when", "action", "state", "site", "exit", "approved by", "started",
            "ended", "output");
        for (ActionStatus a : g.actions()) {
          row(b, "td", a.when(), a.label(), a.state(), a.site(), a.exitCode(), a.approvedBy(),
              a.startedAt(), a.endedAt(), a.output());
        }
        b.append("</table>\n");
      }
    }
    if (!s.failures().isEmpty()) {
      b.append("<h2>Failures</h2><ul>");
      s.failures().forEach(f -> b.append("<li>").append(esc(f)).append("</li>"));
      b.append("</ul>\n");
    }
    b.append("<h2>Steps</h2><ol>");
    s.steps().forEach(st -> b.append("<li>").append(esc(st)).append("</li>"));
    return b.append("</ol>\n</body></html>").toString();
  }

  private static void row(StringBuilder b, String cell, Object... values) {
    if (cell.equals("th")) {
      b.append("<table>");
    }
    b.append("<tr>");
    for (Object v : values) {
      b.append('<').append(cell).append('>').append(v == null ? "-" : esc(v.toString()))
          .append("</").append(cell).append('>');
    }
    b.append("</tr>\n");
  }

  private static String esc(String text) {
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        .replace("\"", "&quot;");
  }

  private static String dash(Object o) {
    return o == null ? "-" : o.toString().replace("|", "\\|").replace("\n", " ");
  }
}
