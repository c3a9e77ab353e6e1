package io.siterecovery.workflows.failback;

import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import java.time.Instant;
import java.util.List;

/**
 * The {@code status} query and result of Failback: where the VM goes home to and from, and the
 * outcomes of its planned failover and reverse replication once each has ended (while the
 * failover runs, {@code failover-<vm>}'s own status shows its progress).
 */
public record FailbackStatus(String vm, FailbackState state, String homeSite, String fromSite,
    FailoverStatus failover, ReprotectStatus reprotect, List<String> steps, String error,
    Instant startedAt) {}
