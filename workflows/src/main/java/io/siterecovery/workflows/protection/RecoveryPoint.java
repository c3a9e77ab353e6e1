package io.siterecovery.workflows.protection;

import io.siterecovery.activities.AgentActivityRecords.PointInfo;
import java.time.Instant;

/**
 * A recovery point: the source's state when log generation {@code generation} was sealed;
 * app-consistent when the VM's quiesce hook ran just before.
 */
public record RecoveryPoint(String id, long generation, Instant time, boolean appConsistent) {
  public static RecoveryPoint of(long generation, Instant time, boolean appConsistent) {
    return new RecoveryPoint(idOf(generation), generation, time, appConsistent);
  }

  public static RecoveryPoint of(PointInfo p) {
    return of(p.generation(), p.time(), p.appConsistent());
  }

  public static String idOf(long generation) {
    return "rp-" + generation;
  }
}
