package io.siterecovery.workers.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverStatus.TestVmStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.protection.RecoveryPoint;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.client.WorkflowClient;
import java.io.IOException;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * The CLI's TEST verbs against a Temporal server without a worker: what they start and signal is
 * read back from the workflow's history, as the server recorded it.
 */
class TestFailoverCommandsTest {
  private WorkerlessServer server;
  private WorkflowClient client;

  @BeforeEach
  void startServer() throws IOException {
    server = new WorkerlessServer();
    client = server.client;
  }

  @AfterEach
  void stopServer() {
    server.close();
  }

  private int cli(String... args) {
    return server.cli(args).exit();
  }


  private List<HistoryEvent> history(String workflowId) {
    return client.fetchHistory(workflowId).getEvents();
  }

  @Test
  void aTestFailoverStartsAsTestFailoverVmAndCleanupSignalsItWithTheNotes() {
    assertThat(cli("failover", "web01", "--type", "TEST", "--point", "rp-5")).isZero();
    HistoryEvent started = history("test-failover-web01").get(0);
    assertThat(started.getWorkflowExecutionStartedEventAttributes().getWorkflowType().getName())
        .isEqualTo("Failover");
    assertThat(started.getWorkflowExecutionStartedEventAttributes().getInput().getPayloads(0)
        .getData().toStringUtf8()).contains("\"vm\":\"web01\"", "\"type\":\"TEST\"",
            "\"recoveryPoint\":\"rp-5\"");

    assertThat(cli("cleanup", "web01", "--notes", "orders page answered")).isZero();
    HistoryEvent signalled = history("test-failover-web01").stream()
        .filter(HistoryEvent::hasWorkflowExecutionSignaledEventAttributes).findFirst().orElseThrow();
    assertThat(signalled.getWorkflowExecutionSignaledEventAttributes().getSignalName())
        .isEqualTo("cleanup");
    assertThat(signalled.getWorkflowExecutionSignaledEventAttributes().getInput().getPayloads(0)
        .getData().toStringUtf8()).isEqualTo("{\"notes\":\"orders page answered\"}");
  }

  @Test
  void optionsThatDoNotFitATestAreRefusedBeforeAnythingStarts() {
    assertThat(cli("failover", "web01", "--type", "TEST", "--auto", "COMMIT", "--after", "PT1H"))
        .isNotZero();
    assertThat(cli("failover", "web01", "--max-test-duration", "PT8H")).isNotZero();
    for (String id : List.of("test-failover-web01", "failover-web01")) {
      assertThatThrownBy(() -> history(id)).as(id + " was not started")
          .hasMessageContaining("not found");
    }
  }

  @Test
  void statusTellsAPersonWhereTheTestVmIsAndWhatWasNoted() {
    Instant now = Instant.parse("2026-11-29T10:00:00Z");
    TestVmStatus test = new TestVmStatus("web01-test", List.of(
        "nbd://127.0.0.1:10810/web01-test/disk0"), now, Duration.ofDays(14),
        now.plus(Duration.ofDays(14)), null, null, List.of());
    String testing = StatusText.of(new FailoverStatus("web01", FailoverType.TEST,
        FailoverState.TESTING, "primary", "secondary", RecoveryPoint.of(5, now, true),
        List.of(), null, now, null, null, test, List.of(), null));
    assertThat(testing).startsWith("test-failover-web01: TEST TESTING  primary -> secondary  "
        + "point rp-5")
        .contains("test VM web01-test on secondary", "nbd://127.0.0.1:10810/web01-test/disk0",
            "cleans itself up at 2026-12-13T10:00:00Z (maxTestDuration 14 days)");

    String cleaning = StatusText.of(new FailoverStatus("web01", FailoverType.TEST,
        FailoverState.CLEANING_UP, "primary", "secondary", RecoveryPoint.of(5, now, true),
        List.of(), null, now, null, null, new TestVmStatus("web01-test", List.of(), now,
            Duration.ofDays(14), null, "the 'cleanup' signal", "orders page answered",
            List.of("export web01-test/disk0")), List.of(), null));
    assertThat(cleaning).contains("not clean yet, still there: [export web01-test/disk0]",
        "cleanup by the 'cleanup' signal", "notes: orders page answered")
        .doesNotContain("cleans itself up");
  }
}
