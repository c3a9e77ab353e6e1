package io.siterecovery.workflows.failover;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.TestCleanup;
import io.siterecovery.activities.AgentActivityRecords.TestVm;
import io.siterecovery.activities.PlanRunActivities;
import io.siterecovery.activities.PolicyActivities;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.Inputs;
import io.siterecovery.workflows.common.StepLog;
import io.siterecovery.workflows.common.MemberListener;
import io.siterecovery.workflows.common.MemberState;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.common.VmOperations;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.FailoverStatus.TestVmStatus;
import io.siterecovery.workflows.protection.RecoveryPoint;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.failure.CanceledFailure;
import io.temporal.failure.TemporalFailure;
import io.temporal.workflow.Saga;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;

/**
 * The TEST runbook: a writable VM {@code <vm>-test} on the target site at a recovery point, while
 * replication carries on underneath (ProtectVm is never told, so its cycles keep running); the
 * test VM is deleted on {@code cleanup}, after maxTestDuration, or by a real failover.
 */
final class TestFailover {
  private static final Logger log = Workflow.getLogger(TestFailover.class);
  /** Failover cannot learn which policy the VM's ProtectVm follows, so tests follow this one. */
  static final String POLICY = "default";
  static final Duration CLEANUP_RETRY = Duration.ofMinutes(5);
  /** Retries by itself for an hour; after that a person has to look at what remains. */
  static final int CLEANUP_ATTEMPTS = 12;
  static final String CLEANUP_INCOMPLETE = "TestCleanupIncomplete";
  private static final String INVALID_STATE = "INVALID_STATE";

  private final AgentActivities agents;
  private final PolicyActivities policies =
      Workflow.newLocalActivityStub(PolicyActivities.class, AgentSteps.policyLookup());
  private final PlanRunActivities runs =
      Workflow.newActivityStub(PlanRunActivities.class, AgentSteps.shortStep());

  private String vm;
  private FailoverState state = FailoverState.VALIDATING;
  private ProtectionPlan plan;
  private RecoveryPoint point;
  private final StepLog steps = new StepLog(log, () -> FailoverDetails.show(status()));
  private String error;
  private Instant startedAt;
  private Duration maxTestDuration;
  private String key;
  private TestVm testVm;
  private Instant cleanupDueAt;
  private CleanupRequest cleanupRequest;
  private boolean cleanupAgain;
  private String cleanedUpBy;
  private List<String> remaining = List.of();

  TestFailover(AgentActivities agents) {
    this.agents = agents;
  }

  FailoverStatus run(String vm, FailoverInput input, Instant startedAt) {
    this.vm = vm;
    steps.about(vm);
    this.startedAt = startedAt;
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.VM_NAME.valueSet(vm));
    setState(FailoverState.VALIDATING);
    try {
      validate(input);
      create();
    } catch (TemporalFailure e) {
      error = reason(e);
      setState(FailoverState.FAILED);
      throw e;
    }
    awaitCleanup();
    cleanUp();
    return status();
  }

  private void validate(FailoverInput input) {
    if (input.commitPolicy() != null) {
      throw Inputs.invalid("field 'commitPolicy' does not apply to a TEST failover: a test is "
          + "never committed; it ends with the 'cleanup' signal or after maxTestDuration");
    }
    String choice = RecoveryPointChoice.validate(input.recoveryPoint());
    // Tests begun before this look replay without it.
    if (Workflow.getVersion("testRefusesBusyVm", Workflow.DEFAULT_VERSION, 1) == 1) {
      refuseWhileBusy();
    }
    plan = agents.describeProtection(vm);
    maxTestDuration = maxTestDuration(input.maxTestDuration(), policies.resolvePolicy(POLICY));
    ReplicaPoint replica = agents.replicaPoint(plan.targetSite(), vm);
    point = RecoveryPointChoice.pointOf(RecoveryPointChoice.resolve(choice, replica), replica);
    steps.add("TEST failover of " + vm + " on " + plan.targetSite() + " at " + describe(point)
        + " (asked for " + choice + "); replication from " + plan.sourceSite()
        + " carries on meanwhile");
  }

  /**
   * A failover that has not started its replica VM yet would meet this test's VM in its way (and
   * retry against it, its source shut down, until it rolled back): a test waits for the VM's
   * other operations to end. A failover started during a test cleans the test up instead.
   */
  private void refuseWhileBusy() {
    String after = "start the test once it has ended";
    VmOperations.refuseWhileRunning(runs, vm, "a TEST failover", Map.of(
        FailoverWorkflow.workflowId(vm), after + " (committed or cancelled): a test VM would "
            + "stand where the failover starts the replica VM",
        ReprotectWorkflow.workflowId(vm), after + ": the replica is being rebuilt",
        FailbackWorkflow.workflowId(vm), after + ": the VM is failing back"));
  }

  /** The policy's limit, or a shorter one asked for in the input. */
  private static Duration maxTestDuration(Duration requested, PolicySettings policy) {
    Duration limit = policy.maxTestDuration();
    if (limit.isNegative() || limit.isZero()) {
      throw Inputs.invalid("policy '" + POLICY + "' has maxTestDuration " + iso(limit)
          + "; it must be above zero");
    }
    if (requested == null) {
      return limit;
    }
    if (requested.isNegative() || requested.isZero() || requested.compareTo(limit) > 0) {
      throw Inputs.invalid("field 'maxTestDuration' must be an ISO-8601 duration above zero and "
          + "at most policy '" + POLICY + "''s maxTestDuration " + iso(limit) + "; got "
          + iso(requested));
    }
    return requested;
  }

  /**
   * The key is taken once, so a retried or replayed creation is the same creation. Whatever a
   * failed creation left is deleted, but only if it carries this key: a test VM under another
   * key is another test's.
   */
  private void create() {
    setState(FailoverState.CREATING_TEST_VM);
    key = Workflow.randomUUID().toString();
    Saga saga = new Saga(new Saga.Options.Builder().build());
    try {
      saga.addCompensation(this::deleteOwnTestVm);
      testVm = agents.createTestVm(plan.targetSite(), vm, point.generation(), key);
    } catch (TemporalFailure e) {
      Workflow.newDetachedCancellationScope(saga::compensate).run();
      throw refusedByAgent(e) ? ApplicationFailure.newNonRetryableFailure("cannot create the "
          + "test VM of " + vm + " on " + plan.targetSite() + ": " + reason(e) + ". One test per "
          + "VM: if another one lives, end it first ('cleanup' to "
          + FailoverWorkflow.testWorkflowId(vm) + ")", INVALID_STATE) : e;
    }
  }

  private static boolean refusedByAgent(TemporalFailure e) {
    return e instanceof ActivityFailure && e.getCause() instanceof ApplicationFailure a
        && INVALID_STATE.equals(a.getType());
  }

  /** Never throws: the creation's own failure is what the workflow reports. */
  private void deleteOwnTestVm() {
    try {
      TestVm found = agents.findTestVm(plan.targetSite(), vm);
      if (found == null || !key.equals(found.key())) {
        return;
      }
      TestCleanup c = agents.deleteTestVm(plan.targetSite(), vm);
      steps.add("creation failed; the half-made " + found.testVm() + " was deleted"
          + (c.remaining().isEmpty() ? "" : ", except " + c.remaining()));
    } catch (ActivityFailure f) {
      steps.add("creation failed, and removing what it may have left failed too ("
          + reason(f) + "); check for " + vm + "-test on " + plan.targetSite());
    }
  }

  private void awaitCleanup() {
    setState(FailoverState.TESTING);
    MemberListener.tellParent(new MemberState(vm, Workflow.getInfo().getWorkflowId(),
        FailoverState.TESTING.name(), point.id(), point.time()));
    cleanupDueAt = now().plus(maxTestDuration);
    steps.add("test VM " + testVm.testVm() + " runs on " + plan.targetSite() + " at " + point.id()
        + ", writable: " + testVm.exports() + "; its writes go to scratch space, never to the "
        + "replica. It cleans itself up at " + cleanupDueAt + " (maxTestDuration "
        + iso(maxTestDuration) + ") unless 'cleanup' comes first");
    boolean signalled;
    try {
      signalled = Workflow.await(maxTestDuration, () -> cleanupRequest != null);
    } catch (CanceledFailure c) {
      cleanedUpBy = "cancellation of the workflow";
      steps.add("the workflow was cancelled: the test VM goes with it");
      Workflow.newDetachedCancellationScope(this::cleanUpOnce).run();
      throw c;
    }
    cleanedUpBy = signalled ? "the 'cleanup' signal" : "maxTestDuration " + iso(maxTestDuration);
    steps.add("cleanup by " + cleanedUpBy + (notes() == null ? "" : ": " + notes()));
  }

  /** Only an empty {@code remaining} is clean; until then it retries, and says what is left. */
  private void cleanUp() {
    setState(FailoverState.CLEANING_UP);
    cleanupDueAt = null;
    int failures = 0;
    while (true) {
      cleanupAgain = false;
      String left = deleteTestVm();
      if (left == null) {
        break;
      }
      failures++;
      if (failures < CLEANUP_ATTEMPTS) {
        steps.add(left + "; not clean yet, trying again in " + CLEANUP_RETRY.toMinutes()
            + " min (attempt " + failures + " of " + CLEANUP_ATTEMPTS + ")");
        Workflow.await(CLEANUP_RETRY, () -> cleanupAgain);
      } else {
        steps.add(left + "; not clean after " + failures + " attempts: remove it on "
            + plan.targetSite() + ", then send 'cleanup' to try again");
        Workflow.await(() -> cleanupAgain);
        failures = 0;
      }
    }
    setState(FailoverState.CLEANED_UP);
  }

  /** A cancelled workflow cannot wait for retries: one attempt, and what remains is said. */
  private void cleanUpOnce() {
    setState(FailoverState.CLEANING_UP);
    cleanupDueAt = null;
    String left = deleteTestVm();
    if (left == null) {
      setState(FailoverState.CLEANED_UP);
      return;
    }
    error = left + "; the workflow was cancelled, so nobody retries: remove it on "
        + plan.targetSite();
    steps.add(error);
    setState(FailoverState.FAILED);
  }

  /** One deletion; null when nothing of the test VM remains, else what does. */
  private String deleteTestVm() {
    TestCleanup c;
    try {
      c = agents.deleteTestVm(plan.targetSite(), vm);
    } catch (ActivityFailure f) {
      return "cleanup of " + testVm.testVm() + " failed: " + reason(f);
    }
    remaining = List.copyOf(c.remaining());
    if (!remaining.isEmpty()) {
      return "cleanup of " + c.testVm() + " left " + remaining;
    }
    steps.add(c.existed() ? c.testVm() + " and its scratch data deleted; nothing of it remains "
        + "(export, files, inventory entry)" : c.testVm() + " was already gone");
    return null;
  }

  void cleanup(CleanupRequest request) {
    if (cleanupRequest == null) {
      cleanupRequest = request == null ? new CleanupRequest(null) : request;
    }
    cleanupAgain = true;
  }

  private String notes() {
    return cleanupRequest == null ? null : cleanupRequest.notes();
  }

  /** The failure's own words, without the SDK's {@code message='...', type=...} wrapping. */
  private static String reason(TemporalFailure f) {
    Throwable t = f instanceof ApplicationFailure || f.getCause() == null ? f : f.getCause();
    return t instanceof ApplicationFailure a ? a.getOriginalMessage() : t.getMessage();
  }

  /** As operators write it in policies: P14D rather than Java's PT336H. */
  private static String iso(Duration d) {
    return d.toSeconds() % 86_400 == 0 ? "P" + d.toDays() + "D" : d.toString();
  }

  private static String describe(RecoveryPoint p) {
    return p.id() + " (" + p.time() + (p.appConsistent() ? ", app-consistent" : "") + ")";
  }

  private Instant now() {
    return Instant.ofEpochMilli(Workflow.currentTimeMillis());
  }

  private void setState(FailoverState next) {
    state = next;
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.PROTECTION_STATE.valueSet(
        "TEST_FAILOVER_" + next.name()));
    FailoverDetails.show(status());
  }


  FailoverStatus status() {
    TestVmStatus test = new TestVmStatus(testVm == null ? null : testVm.testVm(),
        testVm == null ? List.of() : testVm.exports(), testVm == null ? null : testVm.createdAt(),
        maxTestDuration, cleanupDueAt, cleanedUpBy, notes(), remaining);
    return new FailoverStatus(vm, FailoverType.TEST, state,
        plan == null ? null : plan.sourceSite(), plan == null ? null : plan.targetSite(), point,
        steps.list(), error, startedAt, null, null, test, List.of(), null);
  }
}
