package io.siterecovery.workflows;

import static org.assertj.core.api.Assertions.assertThatCode;

import io.siterecovery.workflows.protection.ProtectVmWorkflowImpl;
import io.siterecovery.workflows.replication.InitialReplicationWorkflowImpl;
import io.temporal.testing.WorkflowReplayer;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Runs in flight when a new version is deployed must replay unchanged (histories/README.md). */
class ProtectVmHistoryReplayTest {
  @Test
  void protectVmRunsRecordedBeforeIssue10Replay() {
    for (String recorded : List.of("protectvm-lifecycle.json", "protectvm-continued-as-new.json",
        "protectvm-after-continue-as-new.json")) {
      assertThatCode(() -> WorkflowReplayer.replayWorkflowExecutionFromResource(
          "histories/" + recorded, ProtectVmWorkflowImpl.class))
          .as(recorded + " replays").doesNotThrowAnyException();
    }
  }

  @Test
  void initialReplicationRunRecordedBeforeIssue10Replays() {
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecutionFromResource(
        "histories/initialreplication-long-retry.json", InitialReplicationWorkflowImpl.class))
        .doesNotThrowAnyException();
  }

  @Test
  void runsRecordedWithTheIssue10VersionsReplay() {
    for (String recorded : List.of("protectvm-lifecycle-issue10.json",
        "protectvm-after-continue-as-new-issue10.json")) {
      assertThatCode(() -> WorkflowReplayer.replayWorkflowExecutionFromResource(
          "histories/" + recorded, ProtectVmWorkflowImpl.class))
          .as(recorded + " replays").doesNotThrowAnyException();
    }
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecutionFromResource(
        "histories/initialreplication-long-retry-issue10.json",
        InitialReplicationWorkflowImpl.class)).doesNotThrowAnyException();
  }

  @Test
  void runsRecordedWithFixedRateCyclesAndHealthDuringCyclesReplay() {
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecutionFromResource(
        "histories/protectvm-lifecycle-rpo.json", ProtectVmWorkflowImpl.class))
        .doesNotThrowAnyException();
  }
}
