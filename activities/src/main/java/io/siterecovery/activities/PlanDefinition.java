package io.siterecovery.activities;

import java.time.Duration;
import java.util.List;

/**
 * A recovery plan as the workflows use it: groups of VMs run in order, the VMs of a group in
 * parallel (at most {@code concurrency} at once), actions before and after each group.
 */
public record PlanDefinition(String name, List<Group> groups, int concurrency) {
  /** The concurrency when the configuration names none: VMs of a group started at once. */
  public static final int DEFAULT_CONCURRENCY = 10;

  public record Group(String name, List<String> vms, List<Action> before, List<Action> after) {}

  /**
   * One action: a {@code script} (a name from the agents' own script directories, run on the
   * site where the group's VMs run after the step) or a {@code manual} step that waits for
   * {@code approve}; {@code timeout} bounds it (a script's run; how long an approval may take, null
   * for as long as it takes); {@code operations} limits it to some operations (empty: all).
   */
  public record Action(String script, String manual, Duration timeout, List<String> operations) {
    public static final Duration DEFAULT_SCRIPT_TIMEOUT = Duration.ofMinutes(10);

    public boolean appliesTo(String operation) {
      return operations == null || operations.isEmpty() || operations.contains(operation);
    }

    /** {@code script check-db} or {@code manual "confirm DB is open"}: how status names it. */
    public String label() {
      return script != null ? "script " + script : "manual \"" + manual + "\"";
    }
  }

  public List<String> vms() {
    return groups.stream().flatMap(g -> g.vms().stream()).toList();
  }
}
