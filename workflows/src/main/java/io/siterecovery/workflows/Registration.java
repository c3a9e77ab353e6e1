package io.siterecovery.workflows;

import io.siterecovery.workflows.common.SiteRecoveryDataConverter;
import io.siterecovery.workflows.failback.FailbackWorkflowImpl;
import io.siterecovery.workflows.failover.FailoverWorkflowImpl;
import io.siterecovery.workflows.protection.ProtectVmWorkflowImpl;
import io.siterecovery.workflows.plan.RecoveryPlanWorkflowImpl;
import io.siterecovery.workflows.replication.InitialReplicationWorkflowImpl;
import io.siterecovery.workflows.reprotect.ReprotectWorkflowImpl;
import io.temporal.worker.Worker;
import java.util.List;

/** The one place that knows which workflow implementations a worker runs, and how. */
public final class Registration {
  public static final String TASK_QUEUE = "site-recovery";

  /** The Spring worker's application.yml lists the same classes; a test holds them equal. */
  public static final List<Class<?>> WORKFLOW_IMPLEMENTATIONS = List.of(
      ProtectVmWorkflowImpl.class, InitialReplicationWorkflowImpl.class,
      FailoverWorkflowImpl.class, ReprotectWorkflowImpl.class, FailbackWorkflowImpl.class,
      RecoveryPlanWorkflowImpl.class);

  private Registration() {}

  public static void registerWorkflows(Worker worker) {
    worker.registerWorkflowImplementationTypes(SiteRecoveryDataConverter.implementationOptions(),
        WORKFLOW_IMPLEMENTATIONS.toArray(Class<?>[]::new));
  }
}
