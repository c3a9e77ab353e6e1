package io.siterecovery.workflows.reprotect;

import io.siterecovery.activities.AgentActivityRecords.Salvaged;
import io.siterecovery.workflows.protection.Progress;
import java.time.Instant;
import java.util.List;

/**
 * The {@code status} query and result of Reprotect: the new direction ({@code sourceSite} the
 * active site, {@code targetSite} the old one), how the old disks are brought in line, bytes
 * changed since the failover against bytes sent, and {@code salvaged}: writes the old source
 * held that never reached the replica, kept on the old site until the operator deletes them.
 */
public record ReprotectStatus(String vm, ReprotectState state, String sourceSite,
    String targetSite, ReverseMode mode, long bytesChanged, long bytesSent, Salvaged salvaged,
    Progress progress, List<String> steps, String error, Instant startedAt) {}
