package io.siterecovery.activities;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.Timestamp;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.temporal.activity.Activity;
import io.temporal.api.enums.v1.WorkflowExecutionStatus;
import io.temporal.api.filter.v1.StartTimeFilter;
import io.temporal.api.filter.v1.WorkflowExecutionFilter;
import io.temporal.api.workflow.v1.WorkflowExecutionInfo;
import io.temporal.api.workflowservice.v1.ListClosedWorkflowExecutionsRequest;
import io.temporal.api.workflowservice.v1.ListWorkflowExecutionsRequest;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowNotFoundException;
import io.temporal.common.converter.JacksonJsonPayloadConverter;
import io.temporal.failure.ApplicationFailure;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Answers from Temporal's own records. Earlier runs are read from the server's visibility store
 * and their results, not from a store of our own: workers stay stateless, and a run's result is
 * kept, durably and for every worker, as long as the namespace retains the run.
 */
public final class PlanRunActivitiesImpl implements PlanRunActivities {
  /** Runs of one plan looked at for an ETA: the latest of an operation is usually among them. */
  static final int RUNS_SCANNED = 50;
  /** How often a wait for VM workflows tells Temporal it is still alive. */
  static final long HEARTBEAT_SECONDS = 10;

  // The mapper the workflows' JSON was written with, so a result's times read back as written.
  private static final ObjectMapper MAPPER = JacksonJsonPayloadConverter.newDefaultObjectMapper();

  private final WorkflowClient client;

  public PlanRunActivitiesImpl(WorkflowClient client) {
    this.client = client;
  }

  @Override
  public PlanTimings previousTimings(String plan, String operation) {
    String workflowId = "plan-" + plan;
    List<WorkflowExecutionInfo> runs = new ArrayList<>(closedRuns(workflowId));
    runs.sort(Comparator.comparing((WorkflowExecutionInfo i) -> i.getCloseTime().getSeconds())
        .thenComparing(i -> i.getCloseTime().getNanos()).reversed());
    for (WorkflowExecutionInfo run : runs) {
      // a run that continued as new has no result of its own; its chain's last run has it
      if (run.getStatus() != WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_COMPLETED) {
        continue;
      }
      JsonNode result = client.newUntypedWorkflowStub(workflowId,
              Optional.of(run.getExecution().getRunId()), Optional.empty())
          .getResult(JsonNode.class);
      if (result == null || !operation.equals(result.path("operation").asText())
          || result.path("timings").isNull() || result.path("timings").isMissingNode()) {
        continue;
      }
      try {
        return MAPPER.treeToValue(result.get("timings"), PlanTimings.class);
      } catch (com.fasterxml.jackson.core.JsonProcessingException unreadable) {
        // a result of an older layout: no timings to learn from
      }
    }
    return null;
  }

  /**
   * A server's closed runs of {@code workflowId}: by a visibility query, or, on a server that has
   * none (the embedded test server of {@code dev}), by the older list of closed executions.
   */
  private List<WorkflowExecutionInfo> closedRuns(String workflowId) {
    String namespace = client.getOptions().getNamespace();
    // a plan's name is a checked name (letters, digits, '.', '_', '-'): it stands in the query as is
    try {
      return client.getWorkflowServiceStubs().blockingStub().listWorkflowExecutions(
          ListWorkflowExecutionsRequest.newBuilder().setNamespace(namespace)
              .setPageSize(RUNS_SCANNED)
              .setQuery("WorkflowId = '" + workflowId + "' AND ExecutionStatus = 'Completed'")
              .build()).getExecutionsList();
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() != Status.Code.UNIMPLEMENTED) {
        throw e;
      }
    }
    return client.getWorkflowServiceStubs().blockingStub().listClosedWorkflowExecutions(
        ListClosedWorkflowExecutionsRequest.newBuilder().setNamespace(namespace)
            .setMaximumPageSize(RUNS_SCANNED)
            .setStartTimeFilter(StartTimeFilter.newBuilder()
                .setEarliestTime(Timestamp.getDefaultInstance())
                .setLatestTime(Timestamp.newBuilder()
                    .setSeconds(Instant.now().getEpochSecond() + 60)))
            .setExecutionFilter(WorkflowExecutionFilter.newBuilder().setWorkflowId(workflowId))
            .build()).getExecutionsList();
  }

  @Override
  public List<String> openWorkflows(List<String> workflowIds) {
    List<String> open = new ArrayList<>();
    for (String id : workflowIds) {
      try {
        if (client.newUntypedWorkflowStub(id).describe().getStatus()
            == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING) {
          open.add(id);
        }
      } catch (WorkflowNotFoundException none) {
        // never ran: not busy
      } catch (StatusRuntimeException e) {
        if (e.getStatus().getCode() != Status.Code.NOT_FOUND) {
          throw e;
        }
      }
    }
    return open;
  }

  /** Waits for each in turn: the wait ends with the last to close, whatever the order. */
  @Override
  public List<ClosedRun> awaitClosed(List<String> workflowIds) {
    Map<String, CompletableFuture<JsonNode>> results = new LinkedHashMap<>();
    for (String id : workflowIds) {
      results.put(id, client.newUntypedWorkflowStub(id).getResultAsync(JsonNode.class));
    }
    List<ClosedRun> closed = new ArrayList<>();
    for (Map.Entry<String, CompletableFuture<JsonNode>> e : results.entrySet()) {
      closed.add(outcome(e.getKey(), e.getValue()));
    }
    return closed;
  }

  private ClosedRun outcome(String id, CompletableFuture<JsonNode> result) {
    while (true) {
      try {
        JsonNode r = result.get(HEARTBEAT_SECONDS, TimeUnit.SECONDS);
        return new ClosedRun(id, r == null ? null : r.path("state").asText(null), null);
      } catch (TimeoutException stillRunning) {
        Activity.getExecutionContext().heartbeat(id);
      } catch (ExecutionException failed) {
        Throwable t = failed.getCause();
        while (t.getCause() != null) {
          t = t.getCause();
        }
        return new ClosedRun(id, null, t instanceof ApplicationFailure a
            ? a.getOriginalMessage() : t.getMessage());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException("interrupted while waiting for " + id, e);
      }
    }
  }
}
