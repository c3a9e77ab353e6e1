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
            "COMMITTED", "rp-7", 12L, null, T, T.plusSeconds(3), T.plusSeconds(9))),
            List.of(new ActionStatus("after", "script check-db", "DONE", "secondary", 0,
                "ok <script>alert(1)</script> | pipe", null, T, T.plusSeconds(1)),
                new ActionStatus("after", "manual \"confirm\"", "DONE", null, null, null,
                    "alice", T, T.plusSeconds(2))))),
        List.of(T + " started"), List.of(), T, T.plusSeconds(10), 3L);
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

  @Test
  void validationPrintsEveryProblemAsATable() {
    PlanStatus failed = new PlanStatus("shop", PlanOperation.VALIDATE, PlanState.FAILED, null,
        null, List.of(), List.of(), List.of("db01: not protected", "group db: script check-db is"
            + " missing on site secondary"), T, T, null);
    assertThat(PlanReport.validation(failed)).contains("2 problem(s)", "| 1 | db01: not protected |",
        "| 2 | group db: script check-db is missing on site secondary |");
  }
}
