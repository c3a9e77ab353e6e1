package io.siterecovery.workers.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.workflows.plan.PlanOperation;
import io.siterecovery.workflows.plan.PlanState;
import io.siterecovery.workflows.plan.PlanStatus;
import io.siterecovery.workflows.plan.PlanStatus.ActionStatus;
import io.siterecovery.workflows.plan.PlanStatus.GroupStatus;
import io.siterecovery.workflows.plan.PlanStatus.VmStatus;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The drill report as an auditor reads it: every VM, action and approval, nothing injected. */
class PlanReportTest {
  private static final Instant T = Instant.parse("2026-11-29T10:00:00Z");

  private static PlanStatus run() {
    return new PlanStatus("shop", PlanOperation.PLANNED_FAILOVER, PlanState.COMPLETED, null, null,
        List.of(new GroupStatus("db", "DONE", List.of(new VmStatus("db01", "failover-db01",
            "COMMITTED", "rp-7", 12L, null, T, T.plusSeconds(3), T.plusSeconds(9), 3L, 0L)),
            List.of(new ActionStatus("after", "script check-db", "DONE", "secondary", 0,
                "ok <script>alert(1)</script> | pipe", null, T, T.plusSeconds(1)),
                new ActionStatus("after", "manual \"confirm\"", "DONE", null, null, null,
                    "alice", T, T.plusSeconds(2))), T, T.plusSeconds(3), 3L, 0L)),
        List.of(T + " started"), List.of(), T, T.plusSeconds(10), 3L, T.plusSeconds(10), 10L,
        0L, "no previous run", null);
  }

  @Test
  void markdownListsEveryVmActionAndApproval() {
    String md = PlanReport.markdown(run());
    assertThat(md).contains("# Recovery plan shop: PLANNED_FAILOVER COMPLETED",
        "achieved RTO: 3 s", "| db01 | failover-db01 | COMMITTED | rp-7 | 12 |",
        "| after | manual \"confirm\" | DONE | - | - | alice |");
  }

  @Test
  void htmlEscapesWhatScriptsPrinted() {
    String html = PlanReport.html(run());
    assertThat(html).startsWith("<!DOCTYPE html>").contains("<td>alice</td>",
        "&lt;script&gt;alert(1)&lt;/script&gt;").doesNotContain("<script>");
  }

  /**
   * {@code plan status} while a run waits for an approval: its clock stood still since its last
   * event, so the CLI adds the time since then to what is under way.
   */
  @Test
  void statusShowsElapsedAndEtaAsOfNow() {
    PlanStatus waiting = new PlanStatus("shop", PlanOperation.TEST_FAILOVER,
        PlanState.AWAITING_APPROVAL, "confirm DB", null, List.of(
            new GroupStatus("db", "RUNNING", List.of(new VmStatus("db01", "test-failover-db01",
                "TESTING", "rp-7", 12L, null, T, T.plusSeconds(30), null, 30L, 0L)), List.of(),
                T, null, 60L, 540L),
            new GroupStatus("app", "PENDING", List.of(new VmStatus("app01", null, "PENDING",
                null, null, null, null, null, null, null, 45L)), List.of(), null, null, null,
                120L)),
        List.of(), List.of(), T, null, null, T.plusSeconds(60), 60L, 660L,
        "run 1f2e (ended 2026-11-28T10:00:00Z)", null);
    String md = PlanReport.markdown(PlanReport.asOf(waiting, T.plusSeconds(160)));
    assertThat(md).contains("elapsed 160 s",
        "- ETA: 560 s until every group is done (from run 1f2e (ended 2026-11-28T10:00:00Z))",
        "## Group db: RUNNING (elapsed 160 s, ETA 440 s)",
        "## Group app: PENDING (elapsed - s, ETA 120 s)",
        "| db01 | test-failover-db01 | TESTING | rp-7 | 12 |", "| - | 30 | 0 |",
        "| app01 | - | PENDING |", "| - | - | 45 |");
    PlanStatus first = new PlanStatus("shop", PlanOperation.TEST_FAILOVER, PlanState.RUNNING,
        null, null, List.of(), List.of(), List.of(), T, null, null, T, 0L, null,
        "no previous run", null);
    assertThat(PlanReport.markdown(first)).contains("- ETA: - until every group is done (from "
        + "no previous run)");
  }

  /** A group without an ETA (no earlier run to go by) that is not running reads as such. */
  @Test
  void statusOfAGroupWithoutEtaAsOfNow() {
    PlanStatus waiting = new PlanStatus("shop", PlanOperation.TEST_FAILOVER,
        PlanState.AWAITING_APPROVAL, "confirm", null, List.of(new GroupStatus("web", "DONE",
            List.of(), List.of(), T, T.plusSeconds(30), 30L, null)), List.of(), List.of(), T,
        null, null, T.plusSeconds(30), 30L, null, "no previous run", null);
    assertThat(PlanReport.markdown(PlanReport.asOf(waiting, T.plusSeconds(90))))
        .contains("elapsed 90 s", "## Group web: DONE (elapsed 30 s, ETA - s)");
  }

  @Test
  void validationPrintsEveryProblemAsATable() {
    PlanStatus failed = new PlanStatus("shop", PlanOperation.VALIDATE, PlanState.FAILED, null,
        null, List.of(), List.of(), List.of("db01: not protected", "group db: script check-db is"
            + " missing on site secondary"), T, T, null, T, 0L, null, null, null);
    assertThat(PlanReport.validation(failed)).contains("2 problem(s)", "| 1 | db01: not protected |",
        "| 2 | group db: script check-db is missing on site secondary |");
  }
}
