package io.siterecovery.workflows;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.mockito.ArgumentMatchers.any;
import static org.mockito.Mockito.doAnswer;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectVmWorkflowImpl;
import io.temporal.activity.Activity;
import io.temporal.activity.ActivityExecutionContext;
import io.temporal.api.enums.v1.EventType;
import io.temporal.api.history.v1.HistoryEvent;
import io.temporal.api.testservice.v1.LockTimeSkippingRequest;
import io.temporal.api.testservice.v1.UnlockTimeSkippingRequest;
import io.temporal.client.ActivityCompletionClient;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.serviceclient.TestServiceStubs;
import io.temporal.serviceclient.TestServiceStubsOptions;
import io.temporal.testing.TestWorkflowEnvironment;
import io.temporal.testing.TestWorkflowExtension;
import io.temporal.testing.WorkflowReplayer;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;

/**
 * The replication loop's cadence and health while a cycle is under way, with cycles that take
 * virtual time: each delta call is left open (the activity does not complete on return) and the
 * test heartbeats it and completes it once its duration has passed on the test server's clock.
 * The test server holds its clock to the wall's while an activity is open (it takes a time-skipping
 * lock from the activity's scheduling to its completion); the test gives that lock back while it
 * holds a cycle open and takes it again just before completing it, so a 10-minute cycle takes
 * seconds. Virtual time still moves only in the test's one-second sleeps.
 */
class ProtectVmCycleRateTest {
  @RegisterExtension
  static final TestWorkflowExtension testWorkflow = WorkflowTestSupport.extension();

  private static final Duration F = Duration.ofSeconds(30);

  /** Delta calls under way, each completed when {@link #duration} has passed since it started. */
  private static final class HeldCycles {
    private record Held(byte[] token, long startedMillis) {}

    private final TestWorkflowEnvironment env;
    private final ActivityCompletionClient completions;
    private final TestServiceStubs testService;
    private final Queue<Held> open = new ConcurrentLinkedQueue<>();
    private final AtomicLong generation = new AtomicLong(1);
    private volatile Duration duration;

    HeldCycles(TestWorkflowEnvironment env, WorkflowClient client, AgentActivities agents,
        Duration duration) {
      this.env = env;
      this.completions = client.newActivityCompletionClient();
      this.testService = TestServiceStubs.newServiceStubs(TestServiceStubsOptions
          .newBuilder(env.getWorkflowServiceStubs().getOptions())
          .validateAndBuildWithDefaults());
      this.duration = duration;
      doAnswer(inv -> {
        ActivityExecutionContext ctx = Activity.getExecutionContext();
        ctx.doNotCompleteOnReturn();
        // Held before the lock goes: from the unlock on, the test's sleeps move the clock, and a
        // cycle not yet in the list got no heartbeat; on a loaded machine this thread could wait
        // long enough after the unlock for the 30 s heartbeat timeout to pass in virtual time.
        // Nor can the test complete it early: until the unlock the clock keeps the wall's pace.
        open.add(new Held(ctx.getTaskToken(), env.currentTimeMillis()));
        testService.blockingStub().unlockTimeSkipping(
            UnlockTimeSkippingRequest.getDefaultInstance());
        return null;
      }).when(agents).replicateDelta(any());
    }

    /** Cycles starting from now take {@code next}. */
    void take(Duration next) {
      duration = next;
    }

    int open() {
      return open.size();
    }

    long startedMillisOfOpen() {
      return open.peek().startedMillis();
    }

    /**
     * Advances virtual time a second at a time for up to {@code limit}, completing each open
     * cycle whose duration has passed (its point is that moment) and heartbeating the others;
     * stops early once {@code until} holds.
     */
    void run(Duration limit, BooleanSupplier until) {
      for (long s = 0; s < limit.toSeconds() && !until.getAsBoolean(); s++) {
        env.sleep(Duration.ofSeconds(1));
        long now = env.currentTimeMillis();
        for (Held h : open) {
          if (now - h.startedMillis() >= duration.toMillis()) {
            open.remove(h);
            testService.blockingStub().lockTimeSkipping(
                LockTimeSkippingRequest.getDefaultInstance());
            completions.complete(h.token(),
                WorkflowTestSupport.cycle(env, generation.incrementAndGet()));
          } else {
            completions.heartbeat(h.token(), null);
          }
        }
      }
    }
  }

  private static ProtectVmWorkflow protect(WorkflowClient client) {
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(ProtectVmWorkflow.workflowId("web01")).build());
    WorkflowClient.start(wf::protect, new ProtectVmInput("web01", "default"));
    return wf;
  }

  private static String healthAttribute(WorkflowClient client) {
    return client.newUntypedWorkflowStub(ProtectVmWorkflow.workflowId("web01")).describe()
        .getTypedSearchAttributes().get(SearchAttributeKeys.REPLICATION_HEALTH);
  }

  private static Instant timeOf(HistoryEvent e) {
    return Instant.ofEpochSecond(e.getEventTime().getSeconds(), e.getEventTime().getNanos());
  }

  /** When each delta cycle was scheduled and when each one completed, from the history. */
  private record Cycles(List<Instant> scheduled, List<Instant> completed) {
    static Cycles of(WorkflowClient client) {
      List<Instant> scheduled = new ArrayList<>();
      List<Instant> completed = new ArrayList<>();
      List<Long> deltaIds = new ArrayList<>();
      for (HistoryEvent e : client.fetchHistory(ProtectVmWorkflow.workflowId("web01"))
          .getEvents()) {
        if (e.getEventType() == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
            && e.getActivityTaskScheduledEventAttributes().getActivityType().getName()
                .equals("ReplicateDelta")) {
          deltaIds.add(e.getEventId());
          scheduled.add(timeOf(e));
        } else if (e.getEventType() == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            && deltaIds.contains(e.getActivityTaskCompletedEventAttributes()
                .getScheduledEventId())) {
          completed.add(timeOf(e));
        }
      }
      return new Cycles(scheduled, completed);
    }

    List<Long> gapsMillis() {
      List<Long> gaps = new ArrayList<>();
      for (int i = 1; i < scheduled.size(); i++) {
        gaps.add(Duration.between(scheduled.get(i - 1), scheduled.get(i)).toMillis());
      }
      return gaps;
    }
  }

  private static void assertReplays(WorkflowClient client) {
    assertThatCode(() -> WorkflowReplayer.replayWorkflowExecution(
        client.fetchHistory(ProtectVmWorkflow.workflowId("web01")), ProtectVmWorkflowImpl.class))
        .doesNotThrowAnyException();
  }

  @Test
  void cyclesStartEveryPeriodWhateverTheyTake(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    HeldCycles cycles = new HeldCycles(env, client, agents, Duration.ofSeconds(10));
    WorkflowTestSupport.start(env, agents);
    protect(client);

    cycles.run(Duration.ofMinutes(5), () -> false);
    Cycles c = Cycles.of(client);
    assertThat(c.scheduled()).hasSizeGreaterThanOrEqualTo(8);
    // Before: each cycle started 30 s after the previous one ended, 40 s apart.
    assertThat(c.gapsMillis()).allSatisfy(gap -> assertThat(gap).isBetween(29_000L, 31_000L));
    assertReplays(client);
  }

  @Test
  void aCycleLongerThanThePeriodIsFollowedAtOnceNeverOverlapped(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    HeldCycles cycles = new HeldCycles(env, client, agents, Duration.ofSeconds(45));
    WorkflowTestSupport.start(env, agents);
    protect(client);

    cycles.run(Duration.ofMinutes(5), () -> false);
    Cycles c = Cycles.of(client);
    assertThat(c.scheduled()).hasSizeGreaterThanOrEqualTo(5);
    assertThat(c.gapsMillis()).allSatisfy(gap -> assertThat(gap).isBetween(44_000L, 47_000L));
    for (int i = 1; i < c.scheduled().size(); i++) {
      assertThat(c.scheduled().get(i)).as("cycle %d starts after cycle %d ended", i, i - 1)
          .isAfterOrEqualTo(c.completed().get(i - 1));
    }
    // Late, not missed: the slow cycles alone do not make the missed-cycle rule warn.
    assertThat(client.newWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId("web01")).status().healthReasons())
        .noneMatch(r -> r.contains("were missed"));
  }

  @Test
  void aHungCycleTurnsHealthWarningWhenTheRpoCrossesTheThreshold(TestWorkflowEnvironment env,
      WorkflowClient client) {
    AgentActivities agents = WorkflowTestSupport.healthyAgents(env, true);
    HeldCycles cycles = new HeldCycles(env, client, agents, Duration.ofSeconds(1));
    WorkflowTestSupport.start(env, agents);
    ProtectVmWorkflow wf = protect(client);
    cycles.run(Duration.ofSeconds(95), () -> false);
    Instant point = wf.status().latestRecoveryPoint().time();

    // The next cycle hangs for 10 minutes (a peer that never answers); the policy's threshold is
    // 2 minutes.
    cycles.take(Duration.ofMinutes(10));
    cycles.run(Duration.ofSeconds(60), () -> cycles.open() == 1);
    long hungSince = cycles.startedMillisOfOpen();
    cycles.run(Duration.ofMinutes(3), () -> env.currentTimeMillis()
        >= point.plus(Duration.ofMinutes(2)).minusSeconds(5).toEpochMilli());
    assertThat(healthAttribute(client)).isEqualTo("NORMAL");
    cycles.run(Duration.ofSeconds(10), () -> false);
    assertThat(cycles.open()).isEqualTo(1);
    assertThat(healthAttribute(client)).isEqualTo("WARNING");
    assertThat(wf.status().healthReasons()).anyMatch(r -> r.matches(
        "RPO 1[23]\\d s exceeds the policy's 120 s; a cycle has been running for \\d+ s"));

    cycles.run(Duration.ofMinutes(10), () -> cycles.open() == 0);
    assertThat(env.currentTimeMillis() - hungSince).isBetween(600_000L, 602_000L);
    cycles.run(Duration.ofSeconds(5), () -> healthAttribute(client).equals("NORMAL"));
    assertThat(healthAttribute(client)).isEqualTo("NORMAL");
    assertThat(wf.status().healthReasons()).isEmpty();
    assertReplays(client);
  }
}
