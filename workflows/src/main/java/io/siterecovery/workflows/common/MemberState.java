package io.siterecovery.workflows.common;

/**
 * What a VM's own workflow tells the recovery plan (or failback) that started it, when it
 * reaches a state the parent waits for: {@code AWAITING_COMMIT}, {@code TESTING}. The parent
 * learns of the end from the child's result.
 */
public record MemberState(String vm, String workflowId, String state, String recoveryPoint,
    java.time.Instant pointTime) {}
