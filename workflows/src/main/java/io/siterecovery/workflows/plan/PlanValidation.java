package io.siterecovery.workflows.plan;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.SiteStorage;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.PlanDefinition;
import io.siterecovery.activities.PlanDefinition.Action;
import io.siterecovery.activities.PlanDefinition.Group;
import io.siterecovery.activities.PlanRunActivities;
import io.siterecovery.activities.PolicyActivities;
import io.siterecovery.activities.PolicySettings;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.workflows.common.VmOperations;
import io.siterecovery.workflows.failover.CommitPolicy;
import io.temporal.failure.ActivityFailure;
import io.temporal.failure.ApplicationFailure;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * The dry run: changes nothing and reports every problem at once, each as one line: a VM not
 * protected, needing a resync, without a recovery point or with one older than the policy's RPO
 * threshold, its source or target site not answering, busy in another operation (a VM workflow
 * running, or a test VM alive), a target site with less free space than the plan's test clones
 * and reverse tracking need, scripts the plan names that the site they would run on lacks, and
 * manual steps nobody could approve in time.
 */
final class PlanValidation {
  /**
   * The workflows cannot learn which policy a VM's ProtectVm follows; like Failover's test VMs,
   * the dry run checks against this one (its RPO threshold, its maxTestDuration).
   */
  static final String POLICY = "default";
  /** The RPO limit of dry runs begun before the checks followed the policy (replayed as such). */
  static final Duration FIXED_RPO_LIMIT = Duration.ofMinutes(15);
  /**
   * Free space a target site needs per byte of the disks that fail over to it: a test clone's
   * copy-on-write overlay (10 %) plus the change log that tracks a running replica's writes
   * until reverse replication has sent them (10 %). Both grow with what the VM writes, so this is
   * a floor for an ordinary drill, not a guarantee.
   */
  static final double TEST_CLONE_FRACTION = 0.10;
  static final double REVERSE_TRACKING_FRACTION = 0.10;
  /** The agents' answer for a VM name no site knows. */
  private static final String VM_NOT_FOUND = "VM_NOT_FOUND";
  private static final List<String> DECIDING = List.of(PlanOperation.PLANNED_FAILOVER.name(),
      PlanOperation.UNPLANNED_FAILOVER.name(), PlanOperation.FAILBACK.name());

  private final AgentActivities lookups;
  private final PlanRunActivities runs;
  private final PolicyActivities config;
  private final PlanDefinition plan;
  private final CommitPolicy commitPolicy;
  private final Consumer<String> step;

  PlanValidation(AgentActivities lookups, PlanRunActivities runs, PolicyActivities config,
      PlanDefinition plan, CommitPolicy commitPolicy, Consumer<String> step) {
    this.lookups = lookups;
    this.runs = runs;
    this.config = config;
    this.plan = plan;
    this.commitPolicy = commitPolicy;
    this.step = step;
  }

  List<String> run() {
    List<String> problems = new ArrayList<>();
    // the checks added later ask more of the agents and of Temporal: a run begun before them
    // replays without
    boolean allChecks = Workflow.getVersion("planValidateAll", Workflow.DEFAULT_VERSION, 1) == 1;
    PolicySettings policy = allChecks ? config.resolvePolicy(POLICY) : null;
    Duration rpoLimit = allChecks ? policy.rpoThreshold() : FIXED_RPO_LIMIT;
    String rpoSource = allChecks ? "the RPO threshold of policy '" + POLICY + "'" : "the limit";
    Map<String, Set<String>> scriptsBySite = new LinkedHashMap<>();
    Map<String, Long> diskBytesBySite = new LinkedHashMap<>();
    Map<String, Integer> vmsBySite = new LinkedHashMap<>();
    Instant now = Instant.ofEpochMilli(Workflow.currentTimeMillis());
    if (allChecks) {
      busy(problems);
    }
    for (Group g : plan.groups()) {
      String groupSite = null;
      for (String vm : g.vms()) {
        ProtectionPlan p;
        try {
          p = lookups.describeProtection(vm);
        } catch (ActivityFailure f) {
          problems.add(vm + " (group " + g.name() + "): " + notDescribed(f));
          continue;
        }
        groupSite = groupSite == null ? p.targetSite() : groupSite;
        diskBytesBySite.merge(p.targetSite(), p.totalBytes(), Long::sum);
        vmsBySite.merge(p.targetSite(), 1, Integer::sum);
        try {
          SourceHealth health = lookups.sourceHealth(p);
          if (health.resyncRequiredReason() != null) {
            problems.add(vm + ": needs a resync: " + health.resyncRequiredReason());
          }
        } catch (ActivityFailure f) {
          problems.add(vm + ": its source site " + p.sourceSite() + " does not answer: "
              + message(f));
        }
        try {
          ReplicaPoint r = lookups.replicaPoint(p.targetSite(), vm);
          if (r.pointTime() == null) {
            problems.add(vm + ": its replica on " + p.targetSite() + " holds no recovery point");
          } else if (Duration.between(r.pointTime(), now).compareTo(rpoLimit) > 0) {
            problems.add(vm + ": its latest recovery point is "
                + Duration.between(r.pointTime(), now).toSeconds() + " s old, above "
                + rpoSource + " (" + rpoLimit.toSeconds() + " s)");
          }
          if (lookups.findTestVm(p.targetSite(), vm) != null) {
            problems.add(vm + ": busy: a test VM of it lives on " + p.targetSite());
          }
        } catch (ActivityFailure f) {
          problems.add(vm + ": its target site " + p.targetSite() + " does not answer: "
              + message(f));
        }
      }
      for (Action a : allActions(g)) {
        if (a.script() == null) {
          continue;
        }
        if (groupSite == null) {
          problems.add("group " + g.name() + ": script " + a.script() + " has no site to run on");
          continue;
        }
        String site = groupSite;
        Set<String> have = scriptsBySite.computeIfAbsent(site, s -> {
          try {
            return new LinkedHashSet<>(lookups.planScripts(s));
          } catch (ActivityFailure f) {
            problems.add("site " + s + ": cannot list its scripts: " + message(f));
            return null;
          }
        });
        if (have != null && !have.contains(a.script())) {
          problems.add("group " + g.name() + ": script " + a.script() + " is missing on site "
              + site);
        }
      }
    }
    if (allChecks) {
      freeSpace(problems, diskBytesBySite, vmsBySite);
      approvals(problems, policy);
    }
    problems.forEach(p -> step.accept("problem: " + p));
    return problems;
  }

  /** A VM whose own workflow runs (a failover, a test, a reprotect, a failback) is busy. */
  private void busy(List<String> problems) {
    try {
      VmOperations.running(runs, plan.vms(), List.of()).forEach((id, vm) ->
          problems.add(vm + ": busy: " + id + " is running"));
    } catch (ActivityFailure f) {
      problems.add("cannot tell which VMs are busy: " + message(f));
    }
  }

  /**
   * Each target site needs {@link #TEST_CLONE_FRACTION} + {@link #REVERSE_TRACKING_FRACTION} of
   * the disks of the plan's VMs that fail over to it, free where its agent keeps its data.
   */
  private void freeSpace(List<String> problems, Map<String, Long> diskBytesBySite,
      Map<String, Integer> vmsBySite) {
    for (Map.Entry<String, Long> e : diskBytesBySite.entrySet()) {
      long need = (long) (e.getValue() * (TEST_CLONE_FRACTION + REVERSE_TRACKING_FRACTION));
      try {
        SiteStorage s = lookups.siteStorage(e.getKey());
        if (s.freeBytes() < need) {
          problems.add("site " + e.getKey() + ": " + gib(s.freeBytes()) + " free, below the "
              + gib(need) + " that test clones and reverse tracking of its "
              + vmsBySite.get(e.getKey()) + " VM(s) need ("
              + Math.round((TEST_CLONE_FRACTION + REVERSE_TRACKING_FRACTION) * 100)
              + " % of their " + gib(e.getValue()) + " of disks)");
        }
      } catch (ActivityFailure f) {
        problems.add("site " + e.getKey() + ": cannot tell its free space: " + message(f));
      }
    }
  }

  /**
   * A manual step nobody could approve in time. Under a commit policy (given to VALIDATE as the
   * failover would run with it) a step of a failover or failback without a timeout would hold the
   * run for ever, so the policy never applies. In a TEST_FAILOVER, test VMs clean themselves up
   * after the policy's maxTestDuration: a step after the first test VM started whose timeout,
   * added to those of the steps since then, reaches maxTestDuration may fail only once the test
   * VMs it is about are gone (a step without a timeout may be approved any time, so it is not
   * counted).
   */
  private void approvals(List<String> problems, PolicySettings policy) {
    Duration waited = Duration.ZERO;
    boolean testVmsUp = false;
    for (Group g : plan.groups()) {
      for (Action a : g.before()) {
        waited = approval(problems, policy, "group " + g.name() + ", before", a, testVmsUp,
            waited);
      }
      testVmsUp = true; // the group's VMs start between its before and after actions
      for (Action a : g.after()) {
        waited = approval(problems, policy, "group " + g.name() + ", after", a, true, waited);
      }
    }
  }

  /** Checks one action; returns the approvals' worst-case wait since the first test VM. */
  private Duration approval(List<String> problems, PolicySettings policy, String group,
      Action a, boolean testVmsUp, Duration waited) {
    if (a.manual() == null) {
      return waited;
    }
    String where = group + ": manual \"" + a.manual() + "\"";
    if (commitPolicy != null && a.timeout() == null
        && DECIDING.stream().anyMatch(a::appliesTo)) {
      problems.add(where + " has no timeout: a failover would wait for it for ever, and its "
          + "commit policy (" + commitPolicy.action() + " after " + commitPolicy.after()
          + ") would never apply");
    }
    if (testVmsUp && a.timeout() != null && a.appliesTo(PlanOperation.TEST_FAILOVER.name())) {
      Duration total = waited.plus(a.timeout());
      if (total.compareTo(policy.maxTestDuration()) >= 0) {
        problems.add(where + ": in a TEST_FAILOVER the approvals after the first test VM "
            + "started may take " + total + ", not less than the maxTestDuration of policy '"
            + POLICY + "' (" + policy.maxTestDuration() + "): the test VMs may be gone by then");
      }
      return total;
    }
    return waited;
  }

  private static String gib(long bytes) {
    return String.format("%.1f GiB", bytes / (double) (1L << 30));
  }

  private static List<Action> allActions(Group g) {
    List<Action> all = new ArrayList<>(g.before());
    all.addAll(g.after());
    return all;
  }

  /** Why a VM's protection could not be described: a VM no site knows is said as such. */
  static String notDescribed(ActivityFailure f) {
    return f.getCause() instanceof ApplicationFailure a && VM_NOT_FOUND.equals(a.getType())
        ? a.getOriginalMessage() : "not protected: " + message(f);
  }

  private static String message(ActivityFailure f) {
    return f.getCause() instanceof ApplicationFailure a ? a.getOriginalMessage()
        : f.getCause().getMessage();
  }
}
