package io.siterecovery.workflows;

import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;
import static org.mockito.Mockito.withSettings;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.activities.AgentActivityRecords.PolicySettings;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.PolicyActivitiesImpl;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.common.SiteRecoveryDataConverter;
import io.temporal.api.enums.v1.IndexedValueType;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import io.temporal.worker.Worker;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;

/** Shared set-up: virtual time, our data converter, mocked agent activities. */
final class WorkflowTestSupport {
  static final ProtectionPlan PLAN = new ProtectionPlan("web01", "primary", "secondary",
      List.of(new ProtectionPlan.DiskInfo("disk0", 1L << 30),
          new ProtectionPlan.DiskInfo("disk1", 2L << 30)));

  private WorkflowTestSupport() {}

  static TestWorkflowExtension extension() {
    TestWorkflowExtension.Builder b = TestWorkflowExtension.newBuilder()
        .setWorkflowClientOptions(WorkflowClientOptions.newBuilder()
            .setDataConverter(SiteRecoveryDataConverter.create()).build())
        .setDoNotStart(true);
    SearchAttributeKeys.ALL.forEach(k ->
        b.registerSearchAttribute(k.getName(), IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD));
    return b.build();
  }

  /** Runs our worker on the production task queue, as clients address it. */
  static void start(TestWorkflowEnvironment env, AgentActivities agents) {
    Worker worker = env.newWorker(Registration.TASK_QUEUE);
    Registration.registerWorkflows(worker);
    worker.registerActivitiesImplementations(agents, new PolicyActivitiesImpl(Map.of(
        "default", new PolicySettings("default", Duration.ofSeconds(30), Duration.ofMinutes(2)))));
    env.start();
  }

  /** A healthy agent pair: the VM exists, copies succeed, each cycle applies one generation. */
  static AgentActivities healthyAgents(TestWorkflowEnvironment env, boolean seeded) {
    AgentActivities agents = mock(AgentActivities.class, withSettings().withoutAnnotations());
    AtomicLong generation = new AtomicLong(1);
    when(agents.planProtection("web01")).thenReturn(PLAN);
    when(agents.describeProtection("web01")).thenReturn(PLAN);
    when(agents.enableReplication(any())).thenReturn(seeded);
    when(agents.copyDisk(any())).thenAnswer(inv -> {
      var req = inv.getArgument(0, io.siterecovery.activities.AgentActivityRecords.CopyDiskRequest.class);
      return new DiskCopyResult(req.disk(), req.sizeBytes(), req.sizeBytes() / 2, 0, 1000);
    });
    when(agents.replicaPoint(anyString(), anyString()))
        .thenReturn(new ReplicaPoint(1, Instant.parse("2026-01-01T00:00:00Z"), true));
    when(agents.replicateDelta(any())).thenAnswer(inv -> cycle(env, generation.getAndIncrement()));
    return agents;
  }

  /** A cycle whose point is "now" on the test server's (virtual) clock. */
  static ReplicationCycle cycle(TestWorkflowEnvironment env, long generation) {
    return new ReplicationCycle(generation, generation, Instant.ofEpochMilli(env.currentTimeMillis()),
        2, 4096);
  }

  /** Advances virtual time in small steps until the condition holds. */
  static void awaitVirtual(TestWorkflowEnvironment env, BooleanSupplier condition) {
    for (int i = 0; i < 600; i++) {
      if (condition.getAsBoolean()) {
        return;
      }
      env.sleep(Duration.ofSeconds(1));
    }
    throw new AssertionError("condition not reached in 600 virtual seconds");
  }
}
