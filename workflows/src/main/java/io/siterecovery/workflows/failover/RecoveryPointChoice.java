package io.siterecovery.workflows.failover;

import io.siterecovery.activities.AgentActivityRecords.PointInfo;
import io.siterecovery.activities.AgentActivityRecords.ReplicaPoint;
import io.siterecovery.workflows.common.Inputs;
import io.siterecovery.workflows.protection.RecoveryPoint;
import java.util.Comparator;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code recoveryPoint} field: LATEST, LATEST_PROCESSED, LATEST_APP_CONSISTENT or a point id
 * ("rp-7"). Resolved against the points the replica retains.
 */
final class RecoveryPointChoice {
  private static final Pattern POINT_ID = Pattern.compile("rp-([0-9]+)");

  private RecoveryPointChoice() {}

  /** Validates the field's form before anything is touched. */
  static String validate(String requested) {
    String value = requested == null ? "LATEST" : requested;
    if (value.equals("LATEST") || value.equals("LATEST_PROCESSED")
        || value.equals("LATEST_APP_CONSISTENT") || POINT_ID.matcher(value).matches()) {
      return value;
    }
    throw Inputs.invalid("field 'recoveryPoint': '" + value + "' is not LATEST, LATEST_PROCESSED, "
        + "LATEST_APP_CONSISTENT or a point id like rp-7");
  }

  /** The generation to fail over to; LATEST and LATEST_PROCESSED mean the replica as it is. */
  static long resolve(String choice, ReplicaPoint replica) {
    if (choice.equals("LATEST") || choice.equals("LATEST_PROCESSED")) {
      return replica.appliedGeneration();
    }
    if (choice.equals("LATEST_APP_CONSISTENT")) {
      Optional<PointInfo> p = replica.points().stream().filter(PointInfo::appConsistent)
          .max(Comparator.comparingLong(PointInfo::generation));
      return p.orElseThrow(() -> Inputs.invalid("the replica retains no app-consistent point; "
          + "retained: " + ids(replica))).generation();
    }
    Matcher m = POINT_ID.matcher(choice);
    m.matches();
    long generation = Long.parseLong(m.group(1));
    if (replica.points().stream().noneMatch(p -> p.generation() == generation)) {
      throw Inputs.invalid("recovery point " + choice + " is not retained; retained: "
          + ids(replica));
    }
    return generation;
  }

  /** Generation {@code generation} as the replica lists it; one it does not list is its current point. */
  static RecoveryPoint pointOf(long generation, ReplicaPoint replica) {
    return replica.points().stream().filter(p -> p.generation() == generation).findFirst()
        .map(RecoveryPoint::of)
        .orElse(RecoveryPoint.of(generation, replica.pointTime(), false));
  }

  private static String ids(ReplicaPoint replica) {
    return replica.points().stream().map(p -> "rp-" + p.generation()).toList().toString();
  }
}
