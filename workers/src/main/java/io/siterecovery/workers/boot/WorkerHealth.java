package io.siterecovery.workers.boot;

import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.siterecovery.activities.SiteDirectory;
import io.siterecovery.workflows.Registration;
import io.temporal.api.enums.v1.TaskQueueType;
import io.temporal.api.taskqueue.v1.PollerInfo;
import io.temporal.api.taskqueue.v1.TaskQueue;
import io.temporal.api.workflowservice.v1.DescribeTaskQueueRequest;
import io.temporal.client.WorkflowClient;
import io.temporal.worker.WorkerFactory;
import java.time.Duration;
import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.springframework.boot.actuate.health.Health;
import org.springframework.boot.actuate.health.HealthIndicator;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * What readiness means for a worker ({@code /actuator/health/readiness}): it polls our task queue
 * ({@code temporalWorker}) and every site's agent answers ({@code agents}). Readiness is for
 * alerting and rolling restarts; a worker that is not ready keeps trying, and a site that is down
 * in a disaster makes every worker "not ready" on purpose: the operator should see it.
 */
@Configuration(proxyBeanMethods = false)
class WorkerHealth {
  /** A long poll lasts up to a minute; a poller older than two has stopped. */
  static final Duration POLLER_FRESH = Duration.ofMinutes(2);

  @Bean
  HealthIndicator temporalWorker(WorkerFactory factory, WorkflowClient client) {
    return () -> {
      if (factory.isShutdown() || factory.isTerminated()) {
        return Health.down().withDetail("reason", "the worker was shut down").build();
      }
      if (!factory.isStarted()) {
        return Health.down().withDetail("reason", "the worker has not started polling").build();
      }
      return pollingHealth(client);
    };
  }

  /** Asks the server whether this worker's identity is among the task queue's recent pollers. */
  static Health pollingHealth(WorkflowClient client) {
    String identity = client.getOptions().getIdentity();
    String namespace = client.getOptions().getNamespace();
    try {
      var pollers = client.getWorkflowServiceStubs().blockingStub()
          .withDeadlineAfter(5, TimeUnit.SECONDS)
          .describeTaskQueue(DescribeTaskQueueRequest.newBuilder().setNamespace(namespace)
              .setTaskQueue(TaskQueue.newBuilder().setName(Registration.TASK_QUEUE))
              .setTaskQueueType(TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW).build())
          .getPollersList();
      Instant freshAfter = Instant.now().minus(POLLER_FRESH);
      boolean polling = pollers.stream().filter(p -> identity.equals(p.getIdentity()))
          .map(PollerInfo::getLastAccessTime)
          .anyMatch(t -> Instant.ofEpochSecond(t.getSeconds(), t.getNanos()).isAfter(freshAfter));
      Health.Builder health = polling ? Health.up() : Health.down().withDetail("reason",
          "not among the recent pollers of task queue " + Registration.TASK_QUEUE);
      return health.withDetail("identity", identity).withDetail("taskQueue",
          Registration.TASK_QUEUE).withDetail("pollers", pollers.size()).build();
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() == Status.Code.UNIMPLEMENTED) {
        // Temporal's embedded test server cannot describe task queues; started is all we know.
        return Health.up().withDetail("identity", identity)
            .withDetail("pollers", "not reported by this server").build();
      }
      return Health.down().withDetail("reason", "the Temporal frontend does not answer: "
          + e.getStatus().getCode() + " " + e.getStatus().getDescription()).build();
    }
  }

  @Bean
  HealthIndicator agents(SiteDirectory sites) {
    return () -> {
      Map<String, String> answers = new LinkedHashMap<>();
      boolean all = true;
      for (String site : sites.sites()) {
        try {
          sites.agent(site).orElseThrow().health();
          answers.put(site, "UP");
        } catch (RuntimeException e) {
          all = false;
          answers.put(site, "DOWN: " + e.getMessage());
        }
      }
      return (all ? Health.up() : Health.down()).withDetails(Map.copyOf(answers)).build();
    };
  }
}
