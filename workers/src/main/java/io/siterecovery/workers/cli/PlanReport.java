package io.siterecovery.workers.cli;

import io.siterecovery.workflows.plan.PlanStatus;
import io.siterecovery.workflows.plan.PlanStatus.ActionStatus;
import io.siterecovery.workflows.plan.PlanStatus.GroupStatus;
import io.siterecovery.workflows.plan.PlanStatus.VmStatus;
import java.time.Duration;
import java.time.Instant;
import java.util.List;

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

  /**
   * The status as of {@code now}: a run's clock stands still between its events (while it waits
   * for an approval, say), so what is still under way has run, and has to go, that much longer
   * or shorter than its {@code asOf} said.
   */
  static PlanStatus asOf(PlanStatus s, Instant now) {
    if (s.asOf() == null || s.endedAt() != null || !now.isAfter(s.asOf())) {
      return s;
    }
    long drift = Duration.between(s.asOf(), now).toSeconds();
    Long runEta = s.etaSeconds() == null ? null : 0L;
    List<GroupStatus> groups = new java.util.ArrayList<>();
    for (GroupStatus g : s.groups()) {
      boolean running = "RUNNING".equals(g.state());
      Long eta = running && g.etaSeconds() != null
          ? Long.valueOf(Math.max(0, g.etaSeconds() - drift)) : g.etaSeconds();
      runEta = runEta == null || eta == null ? null : runEta + eta;
      groups.add(new GroupStatus(g.name(), g.state(), g.vms().stream().map(v -> {
        boolean underWay = v.startedAt() != null && v.readyAt() == null && v.endedAt() == null;
        return !underWay ? v : new VmStatus(v.vm(), v.workflowId(), v.state(), v.recoveryPoint(),
            v.dataLossSeconds(), v.error(), v.startedAt(), v.readyAt(), v.endedAt(),
            plus(v.elapsedSeconds(), drift),
            v.etaSeconds() == null ? null : Math.max(0, v.etaSeconds() - drift));
      }).toList(), g.actions(), g.startedAt(), g.endedAt(),
          running ? plus(g.elapsedSeconds(), drift) : g.elapsedSeconds(), eta));
    }
    return new PlanStatus(s.plan(), s.operation(), s.state(), s.awaitingStep(),
        s.commonInstant(), groups, s.steps(), s.failures(), s.startedAt(), s.endedAt(),
        s.rtoSeconds(), now, plus(s.elapsedSeconds(), drift), runEta, s.etaFrom(), s.timings());
  }

  private static Long plus(Long seconds, long drift) {
    return seconds == null ? null : seconds + drift;
  }

  static String markdown(PlanStatus s) {
    StringBuilder b = new StringBuilder();
    b.append("# Recovery plan ").append(s.plan()).append(": ").append(s.operation()).append(' ')
        .append(s.state()).append("\n\n");
    b.append("- started ").append(s.startedAt()).append(s.endedAt() == null ? ""
        : ", ended " + s.endedAt())
        .append(s.elapsedSeconds() == null ? "" : "; elapsed " + s.elapsedSeconds() + " s")
        .append('\n');
    if (s.etaFrom() != null) {
      b.append("- ETA: ").append(s.etaSeconds() == null ? "-" : s.etaSeconds() + " s")
          .append(" until every group is done (from ").append(s.etaFrom()).append(")\n");
    }
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
      b.append("\n## Group ").append(g.name()).append(": ").append(g.state());
      if (g.elapsedSeconds() != null || g.etaSeconds() != null) {
        b.append(" (elapsed ").append(dash(g.elapsedSeconds())).append(" s, ETA ")
            .append(dash(g.etaSeconds())).append(" s)");
      }
      b.append("\n\n");
      b.append("| VM | workflow | state | point | data loss (s) | started | ready | ended |"
          + " error | elapsed (s) | ETA (s) |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
      for (VmStatus v : g.vms()) {
        b.append(String.format("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |%n",
            v.vm(), dash(v.workflowId()), v.state(), dash(v.recoveryPoint()),
            dash(v.dataLossSeconds()), dash(v.startedAt()), dash(v.readyAt()), dash(v.endedAt()),
            dash(v.error()), dash(v.elapsedSeconds()), dash(v.etaSeconds())));
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
