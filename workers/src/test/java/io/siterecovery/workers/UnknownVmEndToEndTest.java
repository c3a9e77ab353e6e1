package io.siterecovery.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowable;

import io.siterecovery.workers.dev.DevStack;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import io.temporal.failure.ApplicationFailure;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A VM name no site knows fails every lifecycle operation at once, said as ProtectVm says it:
 * "not found on any site", not "not protected" or "no committed failover", which would send the
 * operator looking for a protection or a failover of a VM that does not exist.
 */
class UnknownVmEndToEndTest {
  private static final String NOT_FOUND =
      "VM ghost not found on any site (cloud, primary, secondary)";

  @TempDir
  Path data;

  /** How the workflow of {@code type} with {@code id} failed: the failure's type and message. */
  private static String failureOf(WorkflowClient client, String type, String id,
      Map<String, Object> input) {
    WorkflowStub stub = client.newUntypedWorkflowStub(type, WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE).setWorkflowId(id).build());
    stub.start(input);
    Throwable t = catchThrowable(() -> stub.getResult(Object.class));
    assertThat(t).as(id).isInstanceOf(WorkflowFailedException.class);
    Throwable cause = t;
    while (cause.getCause() != null) {
      cause = cause.getCause();
    }
    assertThat(cause).as(id).isInstanceOf(ApplicationFailure.class);
    ApplicationFailure a = (ApplicationFailure) cause;
    return a.getType() + ": " + a.getOriginalMessage();
  }

  @Test
  void eachOperationOnAVmNoSiteKnowsFailsAtOnceAsNotFound() throws Exception {
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0))) {
      WorkflowClient client = stack.client();
      String expected = "VM_NOT_FOUND: " + NOT_FOUND;
      assertThat(failureOf(client, "Failover", FailoverWorkflow.testWorkflowId("ghost"),
          Map.of("vm", "ghost", "type", "TEST"))).isEqualTo(expected);
      assertThat(failureOf(client, "Failover", FailoverWorkflow.workflowId("ghost"),
          Map.of("vm", "ghost", "type", "PLANNED"))).isEqualTo(expected);
      assertThat(failureOf(client, "Failover", FailoverWorkflow.workflowId("ghost") + "-2",
          Map.of("vm", "ghost", "type", "UNPLANNED"))).isEqualTo(expected);
      assertThat(failureOf(client, "Reprotect", ReprotectWorkflow.workflowId("ghost"),
          Map.of("vm", "ghost"))).isEqualTo(expected);
      assertThat(failureOf(client, "Failback", FailbackWorkflow.workflowId("ghost"),
          Map.of("vm", "ghost"))).isEqualTo(expected);

      // a VM that exists but is not protected is still said to be that
      stack.operatorClient(stack.primary()).createVm("db01", List.of(1L << 20));
      assertThat(failureOf(client, "Failover", FailoverWorkflow.testWorkflowId("db01"),
          Map.of("vm", "db01", "type", "TEST")))
          .isEqualTo("NotProtected: VM db01 is not protected on any site");
      assertThat(failureOf(client, "Reprotect", ReprotectWorkflow.workflowId("db01"),
          Map.of("vm", "db01"))).startsWith("NotFailedOver: VM db01 has no committed failover");
    }
  }
}
