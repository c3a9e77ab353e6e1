package io.siterecovery.workflows.replication;

import io.siterecovery.activities.AgentActivityRecords.TransferSettings;
import io.siterecovery.activities.ProtectionPlan;
import java.util.Map;

/**
 * {@code progressWorkflowId}: the workflow whose status shows the copy's progress.
 * {@code copiedBytes}: per disk, the bytes an earlier, stopped copy already put on the replica
 * (a copy started again after a pause goes on from there); absent: everything from the start.
 */
public record InitialReplicationInput(ProtectionPlan plan, TransferSettings transfer,
    String progressWorkflowId, Map<String, Long> copiedBytes) {
  public InitialReplicationInput(ProtectionPlan plan, TransferSettings transfer,
      String progressWorkflowId) {
    this(plan, transfer, progressWorkflowId, null);
  }
}
