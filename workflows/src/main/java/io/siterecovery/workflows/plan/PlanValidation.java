package io.siterecovery.workflows.plan;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.activities.AgentActivityRecords.SourceHealth;
import io.siterecovery.activities.PlanDefinition;
import io.siterecovery.activities.PlanDefinition.Action;
import io.siterecovery.activities.PlanDefinition.Group;
import io.siterecovery.activities.ProtectionPlan;
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
 * protected, needing a resync, without a recovery point or with an old one, its target site not
 * answering, busy with a test, and scripts the plan names that the site they would run on lacks.
 */
final class PlanValidation {
  /** A latest point older than this is reported: the plan would fail over to old data. */
  static final Duration STALE_POINT = Duration.ofMinutes(15);

  private final AgentActivities agents;
  private final AgentActivities lookups;
  private final PlanDefinition plan;
  private final Consumer<String> step;

  PlanValidation(AgentActivities agents, AgentActivities lookups, PlanDefinition plan,
      Consumer<String> step) {
    this.agents = agents;
    this.lookups = lookups;
    this.plan = plan;
    this.step = step;
  }

  List<String> run() {
    List<String> problems = new ArrayList<>();
    Map<String, Set<String>> scriptsBySite = new LinkedHashMap<>();
    Instant now = Instant.ofEpochMilli(Workflow.currentTimeMillis());
    for (Group g : plan.groups()) {
      String groupSite = null;
      for (String vm : g.vms()) {
        ProtectionPlan p;
        try {
          p = lookups.describeProtection(vm);
        } catch (ActivityFailure f) {
          problems.add(vm + " (group " + g.name() + "): not protected: " + message(f));
          continue;
        }
        groupSite = groupSite == null ? p.targetSite() : groupSite;
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
          } else if (Duration.between(r.pointTime(), now).compareTo(STALE_POINT) > 0) {
            problems.add(vm + ": its latest recovery point is "
                + Duration.between(r.pointTime(), now).toMinutes() + " min old (RPO above "
                + STALE_POINT.toMinutes() + " min)");
          }
          if (lookups.findTestVm(p.targetSite(), vm) != null) {
            problems.add(vm + ": busy: a test failover of it runs on " + p.targetSite());
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
    problems.forEach(p -> step.accept("problem: " + p));
    return problems;
  }

  private static List<Action> allActions(Group g) {
    List<Action> all = new ArrayList<>(g.before());
    all.addAll(g.after());
    return all;
  }

  private static String message(ActivityFailure f) {
    return f.getCause() instanceof ApplicationFailure a ? a.getOriginalMessage()
        : f.getCause().getMessage();
  }
}
