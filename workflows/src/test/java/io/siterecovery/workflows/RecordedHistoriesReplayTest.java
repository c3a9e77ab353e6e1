package io.siterecovery.workflows;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.catchThrowable;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.SiteRecoveryDataConverter;
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflowImpl;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.common.WorkflowExecutionHistory;
import io.temporal.testing.TestEnvironmentOptions;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.WorkflowReplayer;
import io.temporal.worker.NonDeterministicException;
import io.temporal.worker.Worker;
import io.temporal.workflow.Workflow;
import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.DynamicTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestFactory;

/**
 * Every history recorded from a real run ({@code histories/real-*.json}, see the README there)
 * replays on the workflow implementations as the worker registers them, with the worker's data
 * converter. A change to a workflow that would break runs in flight fails here: guard it with
 * {@code Workflow.getVersion}. A new file is picked up by itself.
 */
class RecordedHistoriesReplayTest {
  private static TestWorkflowEnvironment env;
  private static Worker registered;

  @BeforeAll
  static void worker() {
    env = environment();
    registered = worker(env, Registration::registerWorkflows);
  }

  @AfterAll
  static void close() {
    env.close();
  }

  private static TestWorkflowEnvironment environment() {
    return TestWorkflowEnvironment.newInstance(TestEnvironmentOptions.newBuilder()
        .setWorkflowClientOptions(WorkflowClientOptions.newBuilder()
            .setDataConverter(SiteRecoveryDataConverter.create()).build())
        .build());
  }

  private static Worker worker(TestWorkflowEnvironment env, Consumer<Worker> registration) {
    Worker worker = env.newWorker(Registration.TASK_QUEUE);
    registration.accept(worker);
    return worker;
  }

  static List<Path> recorded() throws IOException, URISyntaxException {
    Path dir = Path.of(RecordedHistoriesReplayTest.class.getClassLoader()
        .getResource("histories").toURI());
    try (Stream<Path> files = Files.list(dir)) {
      return files.filter(f -> f.getFileName().toString().matches("real-.*\\.json"))
          .sorted().toList();
    }
  }

  private static WorkflowExecutionHistory history(Path file) throws IOException {
    return WorkflowExecutionHistory.fromJson(Files.readString(file));
  }

  @TestFactory
  Stream<DynamicTest> everyRecordedHistoryReplays() throws Exception {
    List<Path> files = recorded();
    assertThat(files).as("recorded histories").isNotEmpty();
    // Each workflow type is covered by at least one real run.
    assertThat(files).extracting(f -> f.getFileName().toString().split("-")[1]).contains(
        "protectvm", "initialreplication", "failover", "reprotect", "failback", "recoveryplan");
    return files.stream().map(file -> DynamicTest.dynamicTest(file.getFileName().toString(),
        file.toUri(), () -> WorkflowReplayer.replayWorkflowExecution(history(file), registered)));
  }

  /**
   * The replay can fail: the demo's Reprotect run, replayed on an implementation that asks the
   * agent for its plan before it names the VM in the search attributes, is refused as
   * nondeterministic, while the implementation as registered replays it.
   */
  @Test
  void aReorderedImplementationFailsTheReplay() throws Exception {
    Path reprotect = recorded().stream()
        .filter(f -> f.getFileName().toString().startsWith("real-reprotect-")).findFirst()
        .orElseThrow();
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecution(history(reprotect), registered))
        .doesNotThrowAnyException();
    try (TestWorkflowEnvironment other = environment()) {
      Worker changed = worker(other, w -> w.registerWorkflowImplementationTypes(
          SiteRecoveryDataConverter.implementationOptions(), PlanFirstReprotect.class));
      Throwable thrown = catchThrowable(() ->
          WorkflowReplayer.replayWorkflowExecution(history(reprotect), changed));
      assertThat(thrown).as("replay on a reordered Reprotect").isNotNull();
      // The replayer reports it as a failed replay query, naming the exception and the mismatch.
      assertThat(thrown).hasMessageContaining(NonDeterministicException.class.getName())
          .hasMessageContaining("EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES does not match "
              + "command type COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK");
    }
  }

  /** Reprotect with its first agent call moved ahead of the search attribute upsert. */
  public static class PlanFirstReprotect extends ReprotectWorkflowImpl {
    @Override
    public ReprotectStatus reprotect(ReprotectInput input) {
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.shortStep())
          .planReprotect(input.vm());
      return super.reprotect(input);
    }
  }
}
