package io.siterecovery.workflows.failover;

import io.siterecovery.workflows.common.LiveDetails;
import io.siterecovery.workflows.failover.FailoverStatus.TestVmStatus;
import io.siterecovery.workflows.protection.RecoveryPoint;
import java.util.List;

/** A failover's current details in the Web UI, for PLANNED, UNPLANNED and TEST alike. */
final class FailoverDetails {
  private FailoverDetails() {}

  static void show(FailoverStatus s) {
    TestVmStatus test = s.test();
    LiveDetails.of(s.state())
        .line("Failover", s.type() + (s.sourceSite() == null ? ""
            : ", " + s.sourceSite() + " → " + s.targetSite()))
        .line("Recovery point", describe(s.recoveryPoint()))
        .line("Test VM", test == null || test.testVm() == null ? null
            : test.testVm() + exports(test.exports()))
        .line("Cleanup due", test == null || test.cleanupDueAt() == null ? null
            : test.cleanupDueAt().toString())
        .line("Commit policy", s.commitPolicy() == null || s.decidesItselfAt() == null ? null
            : s.commitPolicy().action() + " by itself at " + s.decidesItselfAt())
        .progress(s.progress())
        .line("Source", s.fence())
        .line("Error", s.error())
        .line("Last", s.steps().isEmpty() ? null : s.steps().get(s.steps().size() - 1))
        .show();
  }

  private static String describe(RecoveryPoint p) {
    return p == null ? null : p.id() + (p.time() == null ? "" : " at " + p.time())
        + (p.appConsistent() ? ", app-consistent" : ", crash-consistent");
  }

  private static String exports(List<String> exports) {
    return exports == null || exports.isEmpty() ? "" : ", exports " + String.join(" ", exports);
  }
}
