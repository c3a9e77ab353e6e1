package io.siterecovery.workers.boot;

import io.siterecovery.activities.AgentActivitiesImpl;
import io.siterecovery.activities.PlanRunActivitiesImpl;
import io.siterecovery.activities.PolicyActivitiesImpl;
import io.siterecovery.activities.SiteDirectory;
import io.siterecovery.workflows.common.SiteRecoveryDataConverter;
import io.siterecovery.workers.dev.WorkerRunner;
import io.temporal.client.WorkflowClient;
import io.temporal.common.converter.DataConverter;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.spring.boot.TemporalOptionsCustomizer;
import io.temporal.spring.boot.WorkerOptionsCustomizer;
import io.temporal.worker.WorkerOptions;
import io.temporal.worker.WorkflowImplementationOptions;
import io.siterecovery.workflows.Registration;
import io.temporal.spring.boot.autoconfigure.properties.TemporalProperties;
import io.temporal.worker.WorkerFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.boot.ApplicationRunner;
import org.springframework.boot.availability.AvailabilityChangeEvent;
import org.springframework.boot.availability.ReadinessState;
import org.springframework.context.ApplicationListener;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * The worker's parts that the starter does not make: our activities (named in application.yml's
 * {@code activity-beans}), our data converter, our worker tuning, and the search attributes,
 * registered before the starter starts polling.
 */
@Configuration(proxyBeanMethods = false)
class WorkerBeans {
  private static final Logger log = LoggerFactory.getLogger(WorkerBeans.class);

  @Bean
  WorkerSettings workerSettings(SiteRecoveryProperties properties) {
    return new WorkerSettings(properties);
  }

  @Bean
  SiteDirectory siteDirectory(WorkerSettings settings) {
    return new SiteDirectory(settings.config().sites(), settings.config().partners(),
        settings.config().objectStoreDirectory(), settings.config().operatorCredentials());
  }

  @Bean
  AgentActivitiesImpl agentActivities(WorkerSettings settings, WorkflowClient client) {
    return WorkerRunner.agentActivities(settings.config(), client);
  }

  @Bean
  PolicyActivitiesImpl policyActivities(WorkerSettings settings) {
    return new PolicyActivitiesImpl(settings::policies, settings::plans);
  }

  @Bean
  PlanRunActivitiesImpl planRunActivities(WorkflowClient client) {
    return new PlanRunActivitiesImpl(client);
  }

  /** The starter uses the bean of this name for every client and worker it makes. */
  @Bean
  DataConverter mainDataConverter() {
    return SiteRecoveryDataConverter.create();
  }

  @Bean
  TemporalOptionsCustomizer<WorkflowImplementationOptions.Builder> failWorkflowTypes() {
    WorkflowImplementationOptions ours = SiteRecoveryDataConverter.implementationOptions();
    return builder -> builder.setFailWorkflowExceptionTypes(ours.getFailWorkflowExceptionTypes());
  }

  @Bean
  WorkerOptionsCustomizer workerTuning() {
    return (builder, workerName, taskQueue) -> WorkerRunner.tuned(builder);
  }

  /**
   * Says so once the starter's workers poll (they start on ApplicationReadyEvent, and readiness is
   * announced after it): supervisors and the fault-injection harness wait for this line.
   */
  @Bean
  ApplicationListener<AvailabilityChangeEvent<ReadinessState>> announcePolling(
      WorkerFactory factory, WorkflowClient client, TemporalProperties temporal) {
    return event -> {
      if (event.getState() == ReadinessState.ACCEPTING_TRAFFIC && factory.isStarted()) {
        log.info("worker polling task queue '{}' on {} namespace {}", Registration.TASK_QUEUE,
            temporal.getConnection().getTarget(), client.getOptions().getNamespace());
      }
    };
  }

  /**
   * Runs after the context is up and before the starter's {@code ApplicationReadyEvent} starts the
   * workers: a server without our search attributes would fail every workflow task that upserts
   * them, so a worker that cannot make sure of them does not start.
   */
  @Bean
  ApplicationRunner searchAttributes(WorkflowServiceStubs service, WorkflowClient client) {
    return args -> WorkerRunner.registerSearchAttributes(service,
        client.getOptions().getNamespace());
  }
}
