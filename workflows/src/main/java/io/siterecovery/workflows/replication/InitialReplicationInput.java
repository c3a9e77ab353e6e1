package io.siterecovery.workflows.replication;

import io.siterecovery.activities.AgentActivityRecords.TransferSettings;
import io.siterecovery.activities.ProtectionPlan;

/** {@code progressWorkflowId}: the workflow whose status shows the copy's progress. */
public record InitialReplicationInput(ProtectionPlan plan, TransferSettings transfer,
    String progressWorkflowId) {}
