package io.siterecovery.workflows;

import static org.mockito.ArgumentMatchers.any;
import static org.mockito.ArgumentMatchers.anyLong;
import static org.mockito.ArgumentMatchers.anyString;
import static org.mockito.ArgumentMatchers.eq;
import static org.mockito.Mockito.mock;
import static org.mockito.Mockito.when;
import static org.mockito.Mockito.withSettings;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.CopyDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.activities.AgentActivityRecords.DiskResyncResult;
import io.siterecovery.activities.AgentActivityRecords.PointInfo;
import io.siterecovery.activities.AgentActivityRecords.PromoteOutcome;
import io.siterecovery.activities.AgentActivityRecords.ReprotectPlan;
import io.siterecovery.activities.AgentActivityRecords.ReverseOutcome;
import io.siterecovery.activities.AgentActivityRecords.SeedResult;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.ResyncDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.PlanRunActivitiesImpl;
import io.siterecovery.activities.PolicyActivitiesImpl;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.activities.ResyncWindow;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.common.SiteRecoveryDataConverter;
import io.temporal.api.enums.v1.IndexedValueType;
import io.temporal.api.sdk.v1.WorkflowMetadata;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowClientOptions;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import io.temporal.worker.Worker;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalTime;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.BooleanSupplier;

/** Shared set-up: virtual time, our data converter, mocked agent activities. */
final class WorkflowTestSupport {
  /** Plans the tests configure; read at every lookup, as the worker's configuration is. */
  static final Map<String, io.siterecovery.activities.PlanDefinition> PLANS =
      new java.util.concurrent.ConcurrentHashMap<>();

  static final ProtectionPlan PLAN = new ProtectionPlan("web01", "primary", "secondary",
      List.of(new ProtectionPlan.DiskInfo("disk0", 1L << 30),
          new ProtectionPlan.DiskInfo("disk1", 2L << 30)));
  /** The same VM protected the other way: from where it failed over to, back to its home. */
  static final ProtectionPlan REVERSE = new ProtectionPlan("web01", "secondary", "primary",
      PLAN.disks());
  static final SourceHealth HEALTHY_SOURCE = new SourceHealth(4096, 3L << 30, null);
  static final ResyncWindow NIGHTS = new ResyncWindow(LocalTime.of(22, 0), LocalTime.of(6, 0), "UTC");

  /** Policies the tests can switch between; tests may replace entries. */
  static final Map<String, PolicySettings> POLICIES = new ConcurrentHashMap<>();

  private WorkflowTestSupport() {}

  static PolicySettings policy(String name, Duration every) {
    return new PolicySettings(name, every, Duration.ofMinutes(2), Duration.ofHours(24), null, null,
        NIGHTS, false, null, PolicySettings.DEFAULT_MAX_TEST_DURATION);
  }

  static TestWorkflowExtension extension() {
    return extension(null);
  }

  static TestWorkflowExtension extension(Instant initialTime) {
    TestWorkflowExtension.Builder b = TestWorkflowExtension.newBuilder()
        .setWorkflowClientOptions(WorkflowClientOptions.newBuilder()
            .setDataConverter(SiteRecoveryDataConverter.create()).build())
        .setDoNotStart(true);
    if (initialTime != null) {
      b.setInitialTime(initialTime);
    }
    SearchAttributeKeys.ALL.forEach(k ->
        b.registerSearchAttribute(k.getName(), IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD));
    return b.build();
  }

  /** Runs our worker on the production task queue, as clients address it. */
  static void start(TestWorkflowEnvironment env, AgentActivities agents) {
    POLICIES.clear();
    POLICIES.put("default", policy("default", Duration.ofSeconds(30)));
    Worker worker = env.newWorker(Registration.TASK_QUEUE);
    Registration.registerWorkflows(worker);
    worker.registerActivitiesImplementations(agents,
        new PolicyActivitiesImpl(() -> Map.copyOf(POLICIES), () -> Map.copyOf(PLANS)),
        new PlanRunActivitiesImpl(env.getWorkflowClient()));
    env.start();
  }

  /**
   * A healthy agent pair: the VM exists, copies succeed, each cycle applies one generation and
   * the replica retains every point; rollback and resync behave.
   */
  static AgentActivities healthyAgents(TestWorkflowEnvironment env, boolean seeded) {
    AgentActivities agents = mock(AgentActivities.class, withSettings().withoutAnnotations());
    AtomicLong generation = new AtomicLong(1);
    List<PointInfo> points = new ArrayList<>(List.of(new PointInfo(1, Instant.ofEpochMilli(
        env.currentTimeMillis()), false)));
    when(agents.planProtection("web01")).thenReturn(PLAN);
    when(agents.describeProtection("web01")).thenReturn(PLAN);
    when(agents.enableReplication(any())).thenReturn(seeded);
    when(agents.copyDisk(any())).thenAnswer(inv -> {
      CopyDiskRequest req = inv.getArgument(0, CopyDiskRequest.class);
      return req == null ? null
          : new DiskCopyResult(req.disk(), req.sizeBytes(), req.sizeBytes() / 2, 0, 1000);
    });
    when(agents.replicaPoint(anyString(), anyString())).thenAnswer(inv ->
        new ReplicaPoint(points.get(points.size() - 1).generation(),
            points.get(points.size() - 1).time(), true, List.copyOf(points)));
    when(agents.replicateDelta(any())).thenAnswer(inv -> {
      var req = inv.getArgument(0, io.siterecovery.activities.AgentActivityRecords.DeltaRequest.class);
      long g = generation.incrementAndGet();
      boolean app = req != null && req.quiesce();
      points.add(new PointInfo(g, Instant.ofEpochMilli(env.currentTimeMillis()), app));
      return new ReplicationCycle(g, g, Instant.ofEpochMilli(env.currentTimeMillis()), 2, 4096,
          app, null, List.copyOf(points), HEALTHY_SOURCE);
    });
    when(agents.sourceHealth(any())).thenReturn(HEALTHY_SOURCE);
    when(agents.promoteReplica(any())).thenReturn(
        new io.siterecovery.activities.AgentActivityRecords.PromoteOutcome(3 << 20));
    when(agents.beginResync(any())).thenAnswer(inv -> generation.incrementAndGet());
    when(agents.resyncDisk(any())).thenAnswer(inv -> {
      ResyncDiskRequest req = inv.getArgument(0, ResyncDiskRequest.class);
      return req == null ? null : new DiskResyncResult(req.disk(), 100, 3, 3 * 65536, 10);
    });
    when(agents.completeResync(any())).thenAnswer(inv -> {
      points.clear();
      points.add(new PointInfo(generation.get(), Instant.ofEpochMilli(env.currentTimeMillis()),
          false));
      return new ReplicaPoint(generation.get(), points.get(0).time(), true, List.copyOf(points));
    });
    when(agents.rollbackReplica(anyString(), anyString(), anyLong())).thenAnswer(inv -> {
      long to = inv.getArgument(2, Long.class);
      points.removeIf(p -> p.generation() > to);
      PointInfo last = points.get(points.size() - 1);
      return new ReplicaPoint(last.generation(), last.time(), true, List.copyOf(points));
    });
    return agents;
  }

  /**
   * Makes the agents follow the VM across sites, as the real ones do: planProtection and
   * describeProtection answer the current direction, promoteReplica (a committed failover)
   * reverses it, planReprotect reports the VM active where it was promoted with its old copy in
   * state {@code oldCopy} (FAILED_OVER, RUNNING, OFF, MISSING), and the VM's home is primary.
   */
  static AtomicReference<ProtectionPlan> followTheVm(AgentActivities agents,
      ProtectionPlan initial, AtomicReference<String> oldCopy) {
    AtomicReference<ProtectionPlan> direction = new AtomicReference<>(initial);
    when(agents.planProtection("web01")).thenAnswer(inv -> direction.get());
    when(agents.describeProtection("web01")).thenAnswer(inv -> direction.get());
    when(agents.homeOf(any())).thenReturn("primary");
    when(agents.promoteReplica(any())).thenAnswer(inv -> {
      ProtectionPlan promoted = inv.getArgument(0, ProtectionPlan.class);
      direction.set(new ProtectionPlan(promoted.vm(), promoted.targetSite(),
          promoted.sourceSite(), promoted.disks()));
      return new PromoteOutcome(3 << 20);
    });
    when(agents.planReprotect("web01")).thenAnswer(inv -> {
      ProtectionPlan d = direction.get();
      return new ReprotectPlan("web01", d.sourceSite(), d.targetSite(), oldCopy.get(),
          "primary", 3 << 20, d.disks());
    });
    when(agents.reverseOldSource(anyString(), eq("web01"), anyString()))
        .thenReturn(new ReverseOutcome(null, null));
    when(agents.sendChangedRanges(any(), anyString(), any()))
        .thenAnswer(inv -> new SeedResult(12, 1_000_000));
    return direction;
  }

  /** A cycle whose point is "now" on the test server's (virtual) clock. */
  static ReplicationCycle cycle(TestWorkflowEnvironment env, long generation) {
    Instant now = Instant.ofEpochMilli(env.currentTimeMillis());
    return new ReplicationCycle(generation, generation, now, 2, 4096, false, null,
        List.of(new PointInfo(generation, now, false)), HEALTHY_SOURCE);
  }

  /**
   * The workflow's current details as the Temporal Web UI and {@code temporal workflow describe}
   * read them: through the built-in {@code __temporal_workflow_metadata} query.
   */
  static String currentDetails(WorkflowClient client, String workflowId) {
    return client.newUntypedWorkflowStub(workflowId)
        .query("__temporal_workflow_metadata", WorkflowMetadata.class).getCurrentDetails();
  }

  /** The static summary the run was started with, as DescribeWorkflowExecution returns it. */
  static String staticSummary(WorkflowClient client, String workflowId) {
    return client.newUntypedWorkflowStub(workflowId).describe().getStaticSummary();
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
