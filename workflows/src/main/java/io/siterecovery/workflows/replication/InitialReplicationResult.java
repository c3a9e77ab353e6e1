package io.siterecovery.workflows.replication;

import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import java.util.List;

public record InitialReplicationResult(List<DiskCopyResult> disks, long bytesRead, long bytesSent,
    long durationMillis) {}
