package io.siterecovery.workflows.plan;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.PointInfo;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.ScriptContext;
import io.siterecovery.activities.AgentActivityRecords.ScriptOutcome;
import io.siterecovery.activities.AgentActivityRecords.VmExports;
import io.siterecovery.activities.PlanDefinition;
import io.siterecovery.activities.PlanDefinition.Action;
import io.siterecovery.activities.PlanDefinition.Group;
import io.siterecovery.activities.PlanRunActivities;
import io.siterecovery.activities.PlanRunActivities.ClosedRun;
import io.siterecovery.activities.PlanTimings;
import io.siterecovery.activities.PolicyActivities;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.AgentSteps;
import io.siterecovery.workflows.common.Inputs;
import io.siterecovery.workflows.common.MemberState;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.common.SearchAttributeKeys;
import io.siterecovery.workflows.failback.FailbackInput;
import io.siterecovery.workflows.failback.FailbackStatus;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.siterecovery.workflows.failover.CommitPolicy;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.plan.PlanCarry.CarriedMember;
import io.siterecovery.workflows.plan.PlanStatus.ActionStatus;
import io.siterecovery.workflows.plan.PlanStatus.GroupStatus;
import io.siterecovery.workflows.plan.PlanStatus.VmStatus;
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.temporal.activity.ActivityOptions;
import io.temporal.api.enums.v1.ParentClosePolicy;
import io.temporal.common.RetryOptions;
import io.temporal.common.SearchAttributes;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.workflow.Async;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.common.LiveDetails;
import io.temporal.workflow.ChildWorkflowOptions;
import io.temporal.workflow.Promise;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.stream.Collectors;
import org.slf4j.Logger;

/**
 * One operation over a whole application: groups in order, the VMs of a group in parallel (at
 * most the plan's concurrency at once), each VM's part as its own workflow ({@code failover-<vm>},
 * {@code test-failover-<vm>}, {@code reprotect-<vm>}, {@code failback-<vm>}) started with the
 * search attribute {@code RecoveryPlan}, so per-VM mutual exclusion and per-VM views stay as they
 * are. A group starts once every VM of the one before reached its target state (running at its
 * point, a test VM up, reprotected) and that group's {@code after} actions are done. Failovers then
 * wait for {@code commit} or {@code cancel} (or the commit policy), tests for {@code cleanup}, and
 * the decision goes out to every VM. PLANNED_FAILOVER stops at the first failure, no later group
 * starting; the others carry on and report every VM.
 *
 * <p>A large plan continues as new between groups once its history passes
 * {@link #CONTINUE_AS_NEW_AFTER_EVENTS}, carrying its state ({@link PlanCarry}); the VM workflows
 * it started go on (they are abandoned, not cancelled, by their parent's close), their signals
 * reach the new run by workflow id, and their ends are awaited through Temporal
 * ({@link PlanRunActivities#awaitClosed}).
 */
public class RecoveryPlanWorkflowImpl implements RecoveryPlanWorkflow {
  private static final Logger log = Workflow.getLogger(RecoveryPlanWorkflowImpl.class);
  /**
   * A run continues as new at the next group boundary once its history has more events than
   * this. Temporal warns from 10,240 events; a group of 100 VMs adds about 1,000 (start, ready
   * signal, workflow tasks) and the decision sent to 1,000 VMs about 3,000, so each run stays
   * well below the warning.
   */
  static final int CONTINUE_AS_NEW_AFTER_EVENTS = 4_000;
  /** A waiting VM workflow of an earlier run: how long it may take (a test VM lives for days). */
  private static final Duration ADOPTED_WAIT = Duration.ofDays(365);

  private final PolicyActivities config =
      Workflow.newLocalActivityStub(PolicyActivities.class, AgentSteps.policyLookup());
  private final AgentActivities lookups =
      Workflow.newActivityStub(AgentActivities.class, AgentSteps.oneShortAttempt());
  private final PlanRunActivities runs =
      Workflow.newActivityStub(PlanRunActivities.class, AgentSteps.oneShortAttempt());
  private final PlanRunActivities adoptedEnds = Workflow.newActivityStub(PlanRunActivities.class,
      ActivityOptions.newBuilder().setStartToCloseTimeout(ADOPTED_WAIT)
          .setHeartbeatTimeout(Duration.ofMinutes(1))
          .setRetryOptions(RetryOptions.newBuilder().setMaximumInterval(Duration.ofMinutes(1))
              .build()).build());

  /** One VM's part of the run. */
  private static final class Member {
    final String vm;
    final String group;
    String workflowId;
    String state = "PENDING";
    String point;
    Long dataLossSeconds;
    String error;
    Instant startedAt;
    Instant readyAt;
    Instant endedAt;
    ProtectionPlan protection;
    String requestedPoint;
    Promise<?> result;
    Object stub;
    /** Started by an earlier run of the chain: no longer a child, its end learnt via Temporal. */
    boolean adopted;

    Member(String vm, String group) {
      this.vm = vm;
      this.group = group;
    }

    boolean ready() {
      return readyAt != null || endedAt != null;
    }

    boolean failed() {
      return "FAILED".equals(state);
    }
  }

  private String planName;
  private PlanOperation operation;
  private PlanDefinition plan;
  private PlanState state = PlanState.VALIDATING;
  private String awaitingStep;
  private Instant commonInstant;
  private final Map<String, Member> members = new LinkedHashMap<>();
  private final Map<String, String> groupStates = new LinkedHashMap<>();
  private final Map<String, List<ActionStatus>> actions = new LinkedHashMap<>();
  private final List<String> steps = new ArrayList<>();
  private final List<String> failures = new ArrayList<>();
  private Instant startedAt;
  private Instant endedAt;
  private Instant lastReady;
  private CommitPolicy commitPolicy;
  private String decision;
  private OperatorRequest decisionRequest;
  private CleanupRequest cleanupRequest;
  private Approval approval;
  private final Map<String, Instant> groupStartedAt = new LinkedHashMap<>();
  private final Map<String, Instant> groupEndedAt = new LinkedHashMap<>();
  /** The earlier run the ETAs come from, null when none. */
  private PlanTimings previous;
  private String etaFrom;
  private PlanTimings timings;
  private int continuations;

  @Override
  public PlanStatus run(RecoveryPlanInput input) {
    startedAt = now();
    Inputs.requireInput(input, "{\"plan\":\"erp\",\"operation\":\"VALIDATE\"}");
    planName = Inputs.requireName("plan", input.plan());
    operation = input.operation();
    if (operation == null) {
      throw Inputs.invalid("field 'operation' is required: one of "
          + List.of(PlanOperation.values()));
    }
    String choice = validatePoint(input.recoveryPoint());
    commitPolicy = CommitPolicy.validate(input.commitPolicy());
    if (commitPolicy != null && !decides() && operation != PlanOperation.VALIDATE) {
      throw Inputs.invalid("field 'commitPolicy' applies to PLANNED_FAILOVER, "
          + "UNPLANNED_FAILOVER, FAILBACK and VALIDATE only");
    }
    Workflow.upsertTypedSearchAttributes(SearchAttributeKeys.RECOVERY_PLAN.valueSet(planName));
    if (input.carried() != null) {
      return resume(input.carried());
    }
    plan = config.resolvePlan(planName);
    for (Group g : plan.groups()) {
      groupStates.put(g.name(), "PENDING");
      actions.put(g.name(), new ArrayList<>());
      g.vms().forEach(vm -> members.put(vm, new Member(vm, g.name())));
    }
    step(operation + " of plan " + planName + ": " + plan.groups().size() + " groups, "
        + members.size() + " VMs, at most " + plan.concurrency() + " at once per group");
    if (operation == PlanOperation.VALIDATE) {
      new PlanValidation(lookups, runs, config, plan, commitPolicy, this::step).run()
          .forEach(failures::add);
      setState(failures.isEmpty() ? PlanState.COMPLETED : PlanState.FAILED);
      step(failures.isEmpty() ? "no problem found" : failures.size() + " problem(s) found");
      return finish();
    }
    readPreviousRun();
    setState(PlanState.RUNNING);
    resolveMembers(choice);
    return runGroups(0);
  }

  /** The ETAs' source: the latest earlier run of this plan with this operation. */
  private void readPreviousRun() {
    if (Workflow.getVersion("planEta", Workflow.DEFAULT_VERSION, 1) == Workflow.DEFAULT_VERSION) {
      return;
    }
    try {
      previous = runs.previousTimings(planName, operation.name());
      etaFrom = previous == null ? "no previous run"
          : "run " + previous.runId() + " (ended " + previous.endedAt() + ")";
    } catch (ActivityFailure f) {
      etaFrom = "no previous run (its runs could not be read: " + message(f) + ")";
    }
    step("ETA from " + etaFrom);
  }

  /** Groups from {@code first} on, then the decision; continues as new between groups if big. */
  private PlanStatus runGroups(int first) {
    boolean mayContinue = Workflow.getVersion("planContinueAsNew", Workflow.DEFAULT_VERSION, 1)
        == 1;
    for (int i = first; i < plan.groups().size(); i++) {
      Group g = plan.groups().get(i);
      if (stopped()) {
        groupStates.put(g.name(), "SKIPPED");
        g.vms().forEach(vm -> skip(members.get(vm), "an earlier failure stopped the plan"));
        continue;
      }
      if (mayContinue && i > first && historyIsLong()) {
        continueAsNew(i);
      }
      runGroup(g);
    }
    if (mayContinue && plan.groups().size() > first && historyIsLong()) {
      continueAsNew(plan.groups().size());
    }
    decide();
    awaitAllEnded();
    setState(failures.isEmpty() ? PlanState.COMPLETED : PlanState.FAILED);
    return finish();
  }

  private static boolean historyIsLong() {
    return Workflow.getInfo().getHistoryLength() > CONTINUE_AS_NEW_AFTER_EVENTS;
  }

  /**
   * Hands the run's state to a new run of the same workflow id, which goes on at group
   * {@code next}. Signals already received are handled first, so none is lost in between.
   */
  private void continueAsNew(int next) {
    Workflow.await(Workflow::isEveryHandlerFinished);
    continuations++;
    step("continuing as new before " + (next < plan.groups().size()
        ? "group " + plan.groups().get(next).name() : "the decision") + " (history of "
        + Workflow.getInfo().getHistoryLength() + " events; continuation " + continuations + ")");
    List<CarriedMember> carried = members.values().stream().map(m -> new CarriedMember(
        vmStatus(m, null), m.protection, m.requestedPoint)).toList();
    Map<String, List<ActionStatus>> actionsCopy = new LinkedHashMap<>();
    actions.forEach((k, v) -> actionsCopy.put(k, List.copyOf(v)));
    PlanCarry carry = new PlanCarry(plan, startedAt, next, carried, Map.copyOf(groupStates),
        actionsCopy, Map.copyOf(groupStartedAt), Map.copyOf(groupEndedAt), List.copyOf(steps),
        List.copyOf(failures), commonInstant, previous, etaFrom, continuations);
    Workflow.continueAsNew(new RecoveryPlanInput(planName, operation, null, commitPolicy,
        carry));
  }

  /** The run goes on where the one before it continued as new. */
  private PlanStatus resume(PlanCarry c) {
    plan = c.plan();
    startedAt = c.startedAt();
    previous = c.previous();
    etaFrom = c.etaFrom();
    commonInstant = c.commonInstant();
    continuations = c.continuations();
    steps.addAll(c.steps());
    failures.addAll(c.failures());
    groupStartedAt.putAll(c.groupStartedAt());
    groupEndedAt.putAll(c.groupEndedAt());
    setState(PlanState.RUNNING);
    for (Group g : plan.groups()) {
      groupStates.put(g.name(), c.groupStates().get(g.name()));
      actions.put(g.name(), new ArrayList<>(c.actions().get(g.name())));
    }
    Map<String, String> groupOf = new LinkedHashMap<>();
    plan.groups().forEach(g -> g.vms().forEach(vm -> groupOf.put(vm, g.name())));
    for (CarriedMember cm : c.members()) {
      VmStatus v = cm.status();
      Member m = new Member(v.vm(), groupOf.get(v.vm()));
      m.workflowId = v.workflowId();
      m.state = v.state();
      m.point = v.recoveryPoint();
      m.dataLossSeconds = v.dataLossSeconds();
      m.error = v.error();
      m.startedAt = v.startedAt();
      m.readyAt = v.readyAt();
      m.endedAt = v.endedAt();
      m.protection = cm.protection();
      m.requestedPoint = cm.requestedPoint();
      if (m.workflowId != null && m.endedAt == null) {
        m.adopted = true;
        // a reprotect is ready only once it ended, so only failovers and failbacks are left
        m.stub = operation == PlanOperation.FAILBACK
            ? Workflow.newExternalWorkflowStub(FailbackWorkflow.class, m.workflowId)
            : Workflow.newExternalWorkflowStub(FailoverWorkflow.class, m.workflowId);
      }
      members.put(m.vm, m);
    }
    step("continued as new (continuation " + continuations + ")");
    return runGroups(c.nextGroup());
  }

  private boolean decides() {
    return operation == PlanOperation.PLANNED_FAILOVER
        || operation == PlanOperation.UNPLANNED_FAILOVER || operation == PlanOperation.FAILBACK;
  }

  private boolean failover() {
    return operation == PlanOperation.PLANNED_FAILOVER
        || operation == PlanOperation.UNPLANNED_FAILOVER
        || operation == PlanOperation.TEST_FAILOVER;
  }

  /** PLANNED_FAILOVER stops at its first failure; the others carry on past them. */
  private boolean stopped() {
    return operation == PlanOperation.PLANNED_FAILOVER && !failures.isEmpty();
  }

  private String validatePoint(String requested) {
    String value = requested == null ? "LATEST" : requested;
    if (!List.of("LATEST", "LATEST_APP_CONSISTENT", "LATEST_COMMON").contains(value)) {
      throw Inputs.invalid("field 'recoveryPoint': '" + value + "' is not LATEST, "
          + "LATEST_APP_CONSISTENT or LATEST_COMMON (a point id is one VM's, not a plan's)");
    }
    if (requested != null && !failover()) {
      throw Inputs.invalid("field 'recoveryPoint' applies to the failovers only");
    }
    return value;
  }

  /**
   * Where each VM replicates now; a VM that is not protected fails its part at once. With
   * LATEST_COMMON, every VM gets its latest point at or before the latest instant all of them
   * have, so the application comes up consistent across its VMs.
   */
  private void resolveMembers(String choice) {
    if (!failover() && operation != PlanOperation.FAILBACK) {
      return;
    }
    // All at once: a plan of hundreds of VMs must not wait for its lookups one by one, nor spend
    // a workflow task on each.
    Map<Member, Promise<ProtectionPlan>> described = new LinkedHashMap<>();
    for (Member m : members.values()) {
      described.put(m, Async.function(lookups::describeProtection, m.vm));
    }
    for (Member m : members.values()) {
      try {
        m.protection = described.get(m).get();
        m.requestedPoint = choice.equals("LATEST_COMMON") ? null : choice;
      } catch (ActivityFailure f) {
        if (operation == PlanOperation.PLANNED_FAILOVER || operation
            == PlanOperation.UNPLANNED_FAILOVER) {
          Optional<String> runsAt = failedOverTo(m.vm);
          if (runsAt.isPresent()) {
            m.state = "COMMITTED";
            m.endedAt = now();
            m.readyAt = m.endedAt;
            step(m.vm + ": already failed over (runs on " + runsAt.get() + "): skipped");
            continue;
          }
        }
        fail(m, PlanValidation.notDescribed(f));
      }
    }
    if (choice.equals("LATEST_COMMON")) {
      chooseCommonPoints();
    }
  }

  /** A re-run after a PLANNED_FAILOVER stopped part way: VMs already failed over are done. */
  private Optional<String> failedOverTo(String vm) {
    try {
      return Optional.of(lookups.planReprotect(vm).activeSite());
    } catch (ActivityFailure notFailedOver) {
      return Optional.empty();
    }
  }

  private void chooseCommonPoints() {
    Map<Member, List<PointInfo>> points = new LinkedHashMap<>();
    for (Member m : members.values()) {
      if (m.protection != null) {
        ReplicaPoint r = lookups.replicaPoint(m.protection.targetSite(), m.vm);
        points.put(m, r.points());
      }
    }
    commonInstant = points.values().stream()
        .map(p -> p.stream().map(PointInfo::time).filter(t -> t != null)
            .max(Comparator.naturalOrder()).orElse(Instant.EPOCH))
        .min(Comparator.naturalOrder()).orElse(null);
    step("LATEST_COMMON: every VM at its latest point at or before " + commonInstant);
    for (Map.Entry<Member, List<PointInfo>> e : points.entrySet()) {
      Optional<PointInfo> p = e.getValue().stream()
          .filter(x -> x.time() != null && !x.time().isAfter(commonInstant))
          .max(Comparator.comparingLong(PointInfo::generation));
      if (p.isPresent()) {
        e.getKey().requestedPoint = "rp-" + p.get().generation();
      } else {
        fail(e.getKey(), "no retained point at or before " + commonInstant);
      }
    }
  }

  private void runGroup(Group g) {
    groupStates.put(g.name(), "RUNNING");
    groupStartedAt.put(g.name(), now());
    step("group " + g.name() + ": " + g.vms());
    runActions(g, "before", g.before());
    if (stopped()) {
      groupStates.put(g.name(), "FAILED");
      g.vms().forEach(vm -> skip(members.get(vm), "a 'before' action of its group failed"));
      return;
    }
    for (String vm : g.vms()) {
      Member m = members.get(vm);
      if (m.ready() || m.failed()) {
        continue;
      }
      Workflow.await(() -> running(g) < plan.concurrency());
      if (stopped()) {
        // a group-mate failed while this VM waited for its turn: PLANNED stops here too
        skip(m, "an earlier failure stopped the plan");
        continue;
      }
      start(m);
    }
    Workflow.await(() -> g.vms().stream().map(members::get)
        .allMatch(m -> m.ready() || m.failed() || "SKIPPED".equals(m.state)));
    boolean groupFailed = g.vms().stream().map(members::get).anyMatch(Member::failed);
    if (!(groupFailed && operation == PlanOperation.PLANNED_FAILOVER)) {
      runActions(g, "after", g.after());
    }
    groupStates.put(g.name(), g.vms().stream().map(members::get).anyMatch(Member::failed)
        || actions.get(g.name()).stream().anyMatch(a -> a.state().equals("FAILED"))
        ? "FAILED" : "DONE");
    groupEndedAt.put(g.name(), now());
    step("group " + g.name() + " " + groupStates.get(g.name()));
  }

  private long running(Group g) {
    return g.vms().stream().map(members::get)
        .filter(m -> m.startedAt != null && !m.ready() && !m.failed()).count();
  }

  /** Starts the VM's own workflow; it reports back when it reaches the state the plan waits for. */
  private void start(Member m) {
    m.startedAt = now();
    m.state = "STARTED";
    SearchAttributes attributes = SearchAttributes.newBuilder()
        .set(SearchAttributeKeys.RECOVERY_PLAN, planName)
        .set(SearchAttributeKeys.VM_NAME, m.vm).build();
    switch (operation) {
      case TEST_FAILOVER, PLANNED_FAILOVER, UNPLANNED_FAILOVER -> {
        boolean test = operation == PlanOperation.TEST_FAILOVER;
        m.workflowId = test ? FailoverWorkflow.testWorkflowId(m.vm)
            : FailoverWorkflow.workflowId(m.vm);
        FailoverType type = test ? FailoverType.TEST
            : operation == PlanOperation.PLANNED_FAILOVER ? FailoverType.PLANNED
                : FailoverType.UNPLANNED;
        FailoverWorkflow child = Workflow.newChildWorkflowStub(FailoverWorkflow.class,
            options(m.workflowId, attributes,
                Summaries.failover(type, m.vm, m.requestedPoint, null) + inPlan()));
        m.stub = child;
        m.result = Async.function(child::failover, new FailoverInput(m.vm, type,
            m.requestedPoint));
        m.result.handle((r, f) -> ended(m, f == null ? null : message(f), r == null ? null
            : ((FailoverStatus) r).state().name()));
      }
      case REPROTECT -> {
        m.workflowId = ReprotectWorkflow.workflowId(m.vm);
        ReprotectWorkflow child = Workflow.newChildWorkflowStub(ReprotectWorkflow.class,
            options(m.workflowId, attributes, Summaries.reprotect(m.vm, null) + inPlan()));
        m.stub = child;
        m.result = Async.function(child::reprotect, new ReprotectInput(m.vm, false, null));
        m.result.handle((r, f) -> {
          if (r != null) {
            m.readyAt = now();
          }
          return ended(m, f == null ? null : message(f),
              r == null ? null : ((ReprotectStatus) r).state().name());
        });
      }
      case FAILBACK -> {
        m.workflowId = FailbackWorkflow.workflowId(m.vm);
        FailbackWorkflow child = Workflow.newChildWorkflowStub(FailbackWorkflow.class,
            options(m.workflowId, attributes, Summaries.failback(m.vm, true) + inPlan()));
        m.stub = child;
        m.result = Async.function(child::failback, new FailbackInput(m.vm, true));
        m.result.handle((r, f) -> ended(m, f == null ? null : message(f), r == null ? null
            : ((FailbackStatus) r).state().name()));
      }
      default -> throw new IllegalStateException(operation + " starts no VM workflows");
    }
    step(m.vm + ": " + m.workflowId + " started");
  }

  private String inPlan() {
    return " (plan " + planName + ")";
  }

  private static ChildWorkflowOptions options(String id, SearchAttributes attributes,
      String summary) {
    // The VMs' workflows outlive a plan that is terminated: a failover half done must finish.
    return ChildWorkflowOptions.newBuilder().setWorkflowId(id)
        .setTypedSearchAttributes(attributes).setStaticSummary(summary)
        .setParentClosePolicy(ParentClosePolicy.PARENT_CLOSE_POLICY_ABANDON).build();
  }

  /** The VM's workflow ended: with {@code finalState} as its result's, or failed with {@code error}. */
  private Void ended(Member m, String error, String finalState) {
    m.endedAt = now();
    if (error != null || finalState == null) {
      fail(m, Objects.requireNonNullElse(error, m.workflowId + " ended without a result"));
    } else {
      m.state = finalState;
      if (List.of("FAILED", "CANCELLED").contains(finalState) && m.readyAt == null) {
        fail(m, m.workflowId + " ended " + finalState);
      }
    }
    return null;
  }

  private void runActions(Group g, String when, List<Action> list) {
    for (Action a : list) {
      if (!a.appliesTo(operation.name())) {
        actions.get(g.name()).add(new ActionStatus(when, a.label(), "SKIPPED", null, null,
            "not for " + operation, null, null, null));
        continue;
      }
      if (stopped()) {
        return;
      }
      if (a.manual() != null) {
        awaitApproval(g, when, a);
      } else {
        runScript(g, when, a);
      }
    }
  }

  private void awaitApproval(Group g, String when, Action a) {
    Instant began = now();
    setState(PlanState.AWAITING_APPROVAL);
    awaitingStep = a.manual();
    step("group " + g.name() + ", " + when + ": waiting for 'approve' {\"step\":\"" + a.manual()
        + "\"}" + (a.timeout() == null ? "" : " within " + a.timeout()));
    int index = actions.get(g.name()).size();
    actions.get(g.name()).add(new ActionStatus(when, a.label(), "AWAITING_APPROVAL", null, null,
        null, null, began, null));
    boolean approved = true;
    if (a.timeout() == null) {
      Workflow.await(() -> approval != null);
    } else {
      approved = Workflow.await(a.timeout(), () -> approval != null);
    }
    String by = approved ? (approval.by() == null ? "unnamed" : approval.by()) : null;
    approval = null;
    awaitingStep = null;
    setState(PlanState.RUNNING);
    if (approved) {
      step("approved: " + a.manual() + " (by " + by + ")");
    } else {
      failures.add("group " + g.name() + ": no approval of '" + a.manual() + "' within "
          + a.timeout());
      step(failures.get(failures.size() - 1));
    }
    actions.get(g.name()).set(index, new ActionStatus(when, a.label(),
        approved ? "DONE" : "FAILED", null, null, null, by, began, now()));
  }

  private void runScript(Group g, String when, Action a) {
    Instant began = now();
    List<Member> vms = g.vms().stream().map(members::get).toList();
    String site = siteOf(vms, when);
    if (site == null) {
      failures.add("group " + g.name() + ": no site to run script " + a.script() + " on (none of"
          + " its VMs is protected)");
      actions.get(g.name()).add(new ActionStatus(when, a.label(), "FAILED", null, null, null,
          null, began, now()));
      return;
    }
    Duration timeout = a.timeout() == null ? Action.DEFAULT_SCRIPT_TIMEOUT : a.timeout();
    ScriptContext context = new ScriptContext(planName, operation.name(), direction(vms),
        g.name(), vms.stream().map(m -> new VmExports(m.vm, site, exports(m))).toList());
    AgentActivities scripts = Workflow.newActivityStub(AgentActivities.class,
        ActivityOptions.newBuilder().setStartToCloseTimeout(timeout.plusMinutes(1))
            .setRetryOptions(RetryOptions.newBuilder().setMaximumAttempts(1).build()).build());
    step("group " + g.name() + ", " + when + ": script " + a.script() + " on " + site);
    ScriptOutcome outcome;
    try {
      outcome = scripts.runPlanScript(site, a.script(), context, timeout);
    } catch (ActivityFailure f) {
      failures.add("group " + g.name() + ": script " + a.script() + " on " + site
          + " could not run: " + message(f));
      step(failures.get(failures.size() - 1));
      actions.get(g.name()).add(new ActionStatus(when, a.label(), "FAILED", site, null,
          message(f), null, began, now()));
      return;
    }
    if (!outcome.ok()) {
      failures.add("group " + g.name() + ": script " + a.script() + " on " + site
          + (outcome.timedOut() ? " timed out after " + timeout : " exited "
              + outcome.exitCode()));
      step(failures.get(failures.size() - 1));
    }
    actions.get(g.name()).add(new ActionStatus(when, a.label(), outcome.ok() ? "DONE" : "FAILED",
        site, outcome.exitCode(), outcome.output(), null, began, now()));
  }

  /** Where the group's VMs run after the step: the failover target, or the home site. */
  private String siteOf(List<Member> vms, String when) {
    for (Member m : vms) {
      if (m.protection != null) {
        return m.protection.targetSite();
      }
    }
    if (operation == PlanOperation.REPROTECT && !vms.isEmpty()) {
      try {
        return when.equals("before") ? lookups.planReprotect(vms.get(0).vm).activeSite()
            : lookups.describeProtection(vms.get(0).vm).sourceSite();
      } catch (ActivityFailure f) {
        return null;
      }
    }
    return null;
  }

  private static String direction(List<Member> vms) {
    return vms.stream().filter(m -> m.protection != null).findFirst()
        .map(m -> m.protection.sourceSite() + " -> " + m.protection.targetSite()).orElse("");
  }

  private List<String> exports(Member m) {
    if (m.protection == null) {
      return List.of();
    }
    String name = operation == PlanOperation.TEST_FAILOVER ? m.vm + "-test" : m.vm;
    return m.protection.disks().stream().map(d -> name + "/" + d.name()).toList();
  }

  /** Waits for the operator's decision and sends it to every VM that got that far. */
  private void decide() {
    List<Member> live = members.values().stream()
        .filter(m -> m.stub != null && m.readyAt != null && m.endedAt == null).toList();
    lastReady = members.values().stream().map(m -> m.readyAt).filter(t -> t != null)
        .max(Comparator.naturalOrder()).orElse(null);
    if (operation == PlanOperation.TEST_FAILOVER) {
      setState(PlanState.AWAITING_CLEANUP);
      awaitAdopted(); // a test VM also ends by itself, after its maxTestDuration
      step("every test VM is up: awaiting 'cleanup' (each also cleans itself up after its "
          + "maxTestDuration)");
      Workflow.await(() -> cleanupRequest != null || allEnded());
      if (cleanupRequest != null) {
        setState(PlanState.FINISHING);
        for (Member m : live) {
          if (m.endedAt == null) {
            ((FailoverWorkflow) m.stub).cleanup(cleanupRequest);
          }
        }
        step("'cleanup' sent to " + live.size() + " test failovers");
      }
      return;
    }
    if (!decides() || live.isEmpty()) {
      return;
    }
    setState(PlanState.AWAITING_COMMIT);
    if (commitPolicy == null) {
      step("awaiting 'commit' or 'cancel' for " + live.size() + " VMs");
      Workflow.await(() -> decision != null);
    } else {
      step("awaiting 'commit' or 'cancel'; the commit policy " + commitPolicy.action()
          + "s after " + commitPolicy.after());
      if (!Workflow.await(commitPolicy.after(), () -> decision != null)) {
        decision = commitPolicy.action() == CommitPolicy.Action.COMMIT ? "commit" : "cancel";
        decisionRequest = new OperatorRequest("the plan's commit policy");
        step("no decision within " + commitPolicy.after() + ": the commit policy " + decision
            + "s");
      }
    }
    setState(PlanState.FINISHING);
    for (Member m : live) {
      if (m.endedAt != null) {
        continue;
      }
      if (m.stub instanceof FailoverWorkflow f) {
        if (decision.equals("commit")) {
          f.commit(decisionRequest);
        } else {
          f.cancel(decisionRequest);
        }
      } else if (m.stub instanceof FailbackWorkflow f) {
        if (decision.equals("commit")) {
          f.commit(decisionRequest);
        } else {
          f.cancel(decisionRequest);
        }
      }
    }
    step("'" + decision + "' sent to " + live.size() + " VMs");
    // Only now: a test server skips time only while no activity runs, and a failover's VM ends
    // only once it has the decision anyway.
    awaitAdopted();
  }

  /**
   * VM workflows an earlier run of the chain started are not this run's children: their ends come
   * from one activity that waits for them all through Temporal.
   */
  private void awaitAdopted() {
    List<Member> adopted = members.values().stream()
        .filter(m -> m.adopted && m.endedAt == null).toList();
    if (adopted.isEmpty()) {
      return;
    }
    Map<String, Member> byId = new LinkedHashMap<>();
    adopted.forEach(m -> byId.put(m.workflowId, m));
    Async.function(adoptedEnds::awaitClosed, List.copyOf(byId.keySet())).handle((closed, f) -> {
      if (f != null) {
        adopted.forEach(m -> ended(m, "its end could not be learnt: " + message(f), null));
      } else {
        for (ClosedRun c : closed) {
          ended(byId.get(c.workflowId()), c.error(), c.state());
        }
      }
      return null;
    });
  }

  private boolean allEnded() {
    return members.values().stream().allMatch(m -> m.stub == null || m.endedAt != null);
  }

  private void awaitAllEnded() {
    Workflow.await(this::allEnded);
  }

  private void fail(Member m, String why) {
    m.state = "FAILED";
    m.error = why;
    if (m.endedAt == null && m.startedAt != null) {
      m.endedAt = now();
    }
    failures.add(m.vm + ": " + why);
    step(m.vm + " FAILED: " + why);
  }

  private void skip(Member m, String why) {
    if (m.startedAt == null && !m.failed() && !m.ready()) {
      m.state = "SKIPPED";
      m.error = why;
    }
  }

  private PlanStatus finish() {
    endedAt = now();
    timings = operation == PlanOperation.VALIDATE ? null : timings();
    Long rto = lastReady == null ? null : Duration.between(startedAt, lastReady).toSeconds();
    if (rto != null && failover()) {
      step("achieved RTO " + rto + " s (start of the run until the last VM ran)");
    }
    return status();
  }

  private static Instant now() {
    return Instant.ofEpochMilli(Workflow.currentTimeMillis());
  }

  private static String message(RuntimeException f) {
    Throwable t = f;
    while (t.getCause() != null) {
      t = t.getCause();
    }
    return t instanceof ApplicationFailure a ? a.getOriginalMessage() : t.getMessage();
  }

  private void step(String what) {
    steps.add(now() + " " + what);
    log.info("plan {}: {}", planName, what);
    showDetails();
  }

  private void setState(PlanState next) {
    state = next;
    showDetails();
  }

  /**
   * The Web UI's current details: the run's state, its VMs as a bar (ready, or ended, of all),
   * what it waits for, the ETA and the latest step. The VMs' own pages show their details. Set
   * at every step, so worked out from the members directly: {@link #status} copies every step
   * and VM, too much to do a thousand times in a thousand-VM plan.
   */
  private void showDetails() {
    Instant now = now();
    long settled = members.values().stream().filter(Member::ready).count();
    Long eta = previous == null || plan == null ? null : 0L;
    if (eta != null) {
      for (Group g : plan.groups()) {
        Long groupEta = groupEta(g.name(), now);
        eta = groupEta == null ? null : eta + groupEta;
        if (eta == null) {
          break;
        }
      }
    }
    String running = groupStates.entrySet().stream().filter(e -> "RUNNING".equals(e.getValue()))
        .map(Map.Entry::getKey).collect(Collectors.joining(", "));
    LiveDetails.of(state)
        .count("VMs ready or ended", settled, members.size())
        .line("Operation", operation == null ? null : operation.name())
        .line("Groups running", running)
        .line("Awaiting", awaitingStep)
        .line("Failures", failures.isEmpty() ? null
            : failures.size() + ": " + failures.get(failures.size() - 1))
        .line("ETA", eta == null ? null : LiveDetails.duration(eta) + " (from " + etaFrom + ")")
        .line("RTO", lastReady == null ? null
            : LiveDetails.duration(Duration.between(startedAt, lastReady).toSeconds()))
        .line("Last", steps.isEmpty() ? null : steps.get(steps.size() - 1))
        .show();
  }

  @Override
  public void commit(OperatorRequest request) {
    decideBySignal("commit", request);
  }

  @Override
  public void cancel(OperatorRequest request) {
    decideBySignal("cancel", request);
  }

  /** A decision is taken only while AWAITING_COMMIT; one sent earlier is refused in a step. */
  private void decideBySignal(String verb, OperatorRequest request) {
    if (state != PlanState.AWAITING_COMMIT || decision != null) {
      step("'" + verb + "' refused: the plan is " + state + ", not AWAITING_COMMIT");
      return;
    }
    decision = verb;
    decisionRequest = request == null ? new OperatorRequest(null) : request;
  }

  @Override
  public void cleanup(CleanupRequest request) {
    if (state != PlanState.AWAITING_CLEANUP || cleanupRequest != null) {
      step("'cleanup' refused: the plan is " + state + ", not AWAITING_CLEANUP");
      return;
    }
    cleanupRequest = request == null ? new CleanupRequest(null) : request;
  }

  @Override
  public void approve(Approval a) {
    if (a == null || awaitingStep == null || !awaitingStep.equals(a.step())) {
      step("'approve' of " + (a == null ? "nothing" : "'" + a.step() + "'") + " refused: "
          + (awaitingStep == null ? "no step is waiting" : "waiting for '" + awaitingStep + "'"));
      return;
    }
    approval = a;
  }

  @Override
  public void memberState(MemberState s) {
    Member m = s == null ? null : members.get(s.vm());
    if (m == null || m.endedAt != null) {
      return;
    }
    m.state = s.state();
    m.point = s.recoveryPoint();
    if (s.pointTime() != null) {
      m.dataLossSeconds = Math.max(0, Duration.between(s.pointTime(), startedAt).toSeconds());
    }
    if (m.readyAt == null) {
      m.readyAt = now();
      step(m.vm + ": " + s.state() + (s.recoveryPoint() == null ? "" : " at "
          + s.recoveryPoint()));
    }
  }

  @Override
  public PlanStatus status() {
    Instant now = now();
    List<GroupStatus> groups = new ArrayList<>();
    Long runEta = previous == null ? null : 0L;
    if (plan != null) {
      for (Group g : plan.groups()) {
        Long eta = groupEta(g.name(), now);
        runEta = runEta == null || eta == null ? null : runEta + eta;
        groups.add(new GroupStatus(g.name(), groupStates.get(g.name()), g.vms().stream()
            .map(vm -> vmStatus(members.get(vm), now)).toList(),
            List.copyOf(actions.get(g.name())), groupStartedAt.get(g.name()),
            groupEndedAt.get(g.name()), seconds(groupStartedAt.get(g.name()),
                groupEndedAt.get(g.name()), now), eta));
      }
    }
    Long rto = lastReady == null ? null : Duration.between(startedAt, lastReady).toSeconds();
    return new PlanStatus(planName, operation, state, awaitingStep, commonInstant, groups,
        List.copyOf(steps), List.copyOf(failures), startedAt, endedAt, rto, now,
        seconds(startedAt, endedAt, now), runEta, etaFrom, timings);
  }

  /** {@code now} null: as carried to a continuation, without the moment's elapsed time or ETA. */
  private VmStatus vmStatus(Member m, Instant now) {
    Instant until = m.readyAt != null ? m.readyAt : m.endedAt;
    Long elapsed = now == null ? null : seconds(m.startedAt, until, now);
    Long eta = null;
    Long expected = previous == null ? null : previous.vmSeconds().get(m.vm);
    if (now != null && expected != null) {
      eta = until != null || List.of("FAILED", "SKIPPED").contains(m.state) ? 0L
          : m.startedAt == null ? expected : Math.max(0, expected - elapsed);
    }
    return new VmStatus(m.vm, m.workflowId, m.state, m.point, m.dataLossSeconds, m.error,
        m.startedAt, m.readyAt, m.endedAt, elapsed, eta);
  }

  private Long groupEta(String group, Instant now) {
    Long expected = previous == null ? null : previous.groupSeconds().get(group);
    String s = groupStates.get(group);
    if (expected == null || s == null) {
      return null;
    }
    return switch (s) {
      case "PENDING" -> expected;
      case "RUNNING" -> Math.max(0, expected - seconds(groupStartedAt.get(group), null, now));
      default -> 0L;
    };
  }

  /** Seconds from {@code from} to {@code until}, or to {@code now} while not there yet. */
  private static Long seconds(Instant from, Instant until, Instant now) {
    return from == null ? null : Duration.between(from, until != null ? until : now).toSeconds();
  }

  /** What this run took, for the next run's ETA: only the parts that got done. */
  private PlanTimings timings() {
    Map<String, Long> vms = new LinkedHashMap<>();
    for (Member m : members.values()) {
      if (m.startedAt != null && m.readyAt != null && !m.failed()) {
        vms.put(m.vm, Duration.between(m.startedAt, m.readyAt).toSeconds());
      }
    }
    Map<String, Long> groups = new LinkedHashMap<>();
    Instant lastGroupEnd = null;
    boolean allDone = true;
    for (Group g : plan.groups()) {
      Instant begin = groupStartedAt.get(g.name());
      Instant end = groupEndedAt.get(g.name());
      if ("DONE".equals(groupStates.get(g.name())) && begin != null && end != null) {
        groups.put(g.name(), Duration.between(begin, end).toSeconds());
        lastGroupEnd = end;
      } else {
        allDone = false;
      }
    }
    return new PlanTimings(Workflow.getInfo().getRunId(), endedAt, vms, groups,
        allDone && lastGroupEnd != null ? Duration.between(startedAt, lastGroupEnd).toSeconds()
            : null);
  }
}
