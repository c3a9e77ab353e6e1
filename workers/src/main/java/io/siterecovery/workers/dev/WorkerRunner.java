package io.siterecovery.workers.dev;

import io.siterecovery.activities.AgentActivitiesImpl;
import io.siterecovery.activities.PlanDefinition;
import io.siterecovery.activities.PlanRunActivitiesImpl;
import io.siterecovery.activities.PolicyActivitiesImpl;
import io.siterecovery.activities.PolicySettings;
import java.util.Map;
import java.util.function.Supplier;
import io.siterecovery.activities.SiteDirectory;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.common.SiteRecoveryDataConverter;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.temporal.api.enums.v1.IndexedValueType;
import io.temporal.api.operatorservice.v1.AddSearchAttributesRequest;
import io.temporal.api.operatorservice.v1.ListSearchAttributesRequest;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.serviceclient.OperatorServiceStubs;
import io.temporal.serviceclient.OperatorServiceStubsOptions;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import io.temporal.worker.Worker;
import io.temporal.worker.WorkerFactory;
import io.temporal.worker.WorkerOptions;
import java.time.Duration;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import java.io.Closeable;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Connects to Temporal and runs the site-recovery worker; stateless, so run as many as needed. */
public final class WorkerRunner implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(WorkerRunner.class);

  private final WorkflowServiceStubs service;
  private final WorkflowClient client;
  private final WorkerFactory factory;

  public WorkerRunner(SiteRecoveryConfig config) {
    this(config, config::policySettings, config::planDefinitions);
  }

  /**
   * {@code policies} and {@code plans} are read at every lookup, so an edited config file applies
   * live.
   */
  public WorkerRunner(SiteRecoveryConfig config,
      Supplier<Map<String, PolicySettings>> policies, Supplier<Map<String, PlanDefinition>> plans) {
    this.service = connect(config.temporal());
    this.client = client(service, config.namespace());
    registerSearchAttributes(service, config.namespace());
    this.factory = WorkerFactory.newInstance(client);
    Worker worker = factory.newWorker(Registration.TASK_QUEUE, workerOptions());
    Registration.registerWorkflows(worker);
    worker.registerActivitiesImplementations(agentActivities(config, client),
        new PolicyActivitiesImpl(policies, plans), new PlanRunActivitiesImpl(client));
    factory.start();
    log.info("worker polling task queue '{}' on {} namespace {}", Registration.TASK_QUEUE,
        config.temporal(), config.namespace());
  }

  /** The agent activities, which report copy progress to the workflow that runs the copy. */
  public static AgentActivitiesImpl agentActivities(SiteRecoveryConfig config,
      WorkflowClient client) {
    SiteDirectory sites = new SiteDirectory(config.sites(), config.partners(),
        config.objectStoreDirectory(), config.operatorCredentials());
    return new AgentActivitiesImpl(sites, (workflowId, progress) ->
        client.newUntypedWorkflowStub(workflowId).signal("copyProgress", progress));
  }

  /**
   * Heartbeats of a disk copy (after every ~3 s agent call) reach the server at most every 4 s;
   * the SDK's default would hold them back to 0.8 of the heartbeat timeout (12 s), and after a
   * worker crash everything since the last recorded heartbeat is sent again.
   */
  static final Duration HEARTBEAT_THROTTLE = Duration.ofSeconds(4);

  /**
   * System property {@value #STICKY_PROPERTY} (an ISO-8601 duration; {@code PT0S} turns sticky
   * execution off): how long a workflow task waits on this worker's own queue before the server
   * gives it to another worker. The fault-injection harness sets {@code PT0S}: Temporal's test
   * server never takes a task back from a killed worker's sticky queue (a real server does after
   * this timeout, 5 s by default), so every workflow that worker had cached would stall there.
   */
  public static final String STICKY_PROPERTY = "siterecovery.worker.stickyScheduleToStart";

  static WorkerOptions workerOptions() {
    return tuned(WorkerOptions.newBuilder()).build();
  }

  /** Our worker tuning, on any worker's options (the embedded stack's and the Spring worker's). */
  public static WorkerOptions.Builder tuned(WorkerOptions.Builder options) {
    options.setMaxHeartbeatThrottleInterval(HEARTBEAT_THROTTLE);
    String sticky = System.getProperty(STICKY_PROPERTY);
    if (sticky != null && !sticky.isBlank()) {
      options.setStickyQueueScheduleToStartTimeout(Duration.parse(sticky.trim()));
    }
    return options;
  }

  public static WorkflowServiceStubs connect(String address) {
    return WorkflowServiceStubs.newServiceStubs(
        WorkflowServiceStubsOptions.newBuilder().setTarget(address).build());
  }

  public static WorkflowClient client(WorkflowServiceStubs service, String namespace) {
    return WorkflowClient.newInstance(service, WorkflowClientOptions.newBuilder()
        .setNamespace(namespace).setDataConverter(SiteRecoveryDataConverter.create()).build());
  }

  /**
   * Registers our Keyword search attributes where missing. Workflows upsert them, and a server
   * without them would fail every such workflow task, so a worker that cannot make sure of them
   * refuses to start.
   */
  public static void registerSearchAttributes(WorkflowServiceStubs service, String namespace) {
    // Over the workflow service's own channel, so that its TLS settings apply here too.
    OperatorServiceStubs operator = OperatorServiceStubs.newServiceStubs(
        OperatorServiceStubsOptions.newBuilder().setChannel(service.getRawChannel())
            .validateAndBuildWithDefaults());
    try {
      Set<String> existing = existingSearchAttributes(operator, namespace);
      AddSearchAttributesRequest.Builder add = AddSearchAttributesRequest.newBuilder()
          .setNamespace(namespace);
      SearchAttributeKeys.ALL.stream().filter(k -> !existing.contains(k.getName()))
          .forEach(k -> add.putSearchAttributes(k.getName(),
              IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD));
      if (add.getSearchAttributesCount() > 0) {
        try {
          operator.blockingStub().addSearchAttributes(add.build());
          log.info("registered search attributes {}", add.getSearchAttributesMap().keySet());
        } catch (StatusRuntimeException e) {
          if (e.getStatus().getCode() != Status.Code.ALREADY_EXISTS) {
            throw e;
          }
        }
      }
    } catch (RuntimeException e) {
      throw new IllegalStateException("cannot register the search attributes " + SearchAttributeKeys.ALL
          .stream().map(k -> k.getName()).toList() + " in namespace " + namespace + " ("
          + e.getMessage() + "); create them as Keyword, e.g. `temporal operator search-attribute "
          + "create --name VmName --type Keyword`", e);
    } finally {
      operator.shutdownNow();
    }
  }

  /** The embedded test server cannot list attributes; there, we just add them all. */
  private static Set<String> existingSearchAttributes(OperatorServiceStubs operator, String ns) {
    try {
      return operator.blockingStub().listSearchAttributes(
          ListSearchAttributesRequest.newBuilder().setNamespace(ns).build())
          .getCustomAttributesMap().keySet();
    } catch (StatusRuntimeException e) {
      if (e.getStatus().getCode() == Status.Code.UNIMPLEMENTED) {
        return Set.of();
      }
      throw e;
    }
  }

  public WorkflowClient client() {
    return client;
  }

  @Override
  public void close() {
    factory.shutdownNow();
    factory.awaitTermination(5, java.util.concurrent.TimeUnit.SECONDS);
    service.shutdownNow();
  }
}
