package io.siterecovery.workflows.failover;

import io.siterecovery.workflows.common.Inputs;
import java.time.Duration;

/**
 * What a failover does by itself when nobody decides: {@code {"action":"COMMIT","after":"PT1H"}}
 * commits (or, with {@code CANCEL}, cancels) once it has waited that long in
 * {@code AWAITING_COMMIT} without a {@code commit} or {@code cancel} signal.
 */
public record CommitPolicy(Action action, Duration after) {
  /** The longest a policy may wait: past that, nobody is watching the failover anyway. */
  static final Duration MAX_AFTER = Duration.ofDays(30);

  public enum Action { COMMIT, CANCEL }

  /** Fails the workflow at once, naming the problem, if the policy cannot be followed. */
  public static CommitPolicy validate(CommitPolicy policy) {
    if (policy == null) {
      return null;
    }
    if (policy.action() == null) {
      throw Inputs.invalid("field 'commitPolicy.action' is required: COMMIT or CANCEL");
    }
    if (policy.after() == null || policy.after().isNegative() || policy.after().isZero()
        || policy.after().compareTo(MAX_AFTER) > 0) {
      throw Inputs.invalid("field 'commitPolicy.after' must be an ISO-8601 duration above zero "
          + "and at most " + MAX_AFTER.toDays() + " days, e.g. \"PT1H\"; got " + policy.after());
    }
    return policy;
  }
}
