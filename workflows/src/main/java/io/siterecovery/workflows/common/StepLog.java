package io.siterecovery.workflows.common;

import io.temporal.workflow.Workflow;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;

/**
 * The steps a runbook shows in its status, each stamped with the workflow time it happened and
 * logged under the VM it is about. Lives in the workflow thread; the query reads a copy.
 */
public final class StepLog {
  private final Logger log;
  /** The workflow's current details follow each step (see {@link LiveDetails}). */
  private final Runnable afterEachStep;
  private final List<String> steps = new ArrayList<>();
  private String subject;

  public StepLog(Logger log, Runnable afterEachStep) {
    this.log = log;
    this.afterEachStep = afterEachStep;
  }

  /** Names what the following steps are about in the log (the VM), once the input is read. */
  public void about(String subject) {
    this.subject = subject;
  }

  public void add(String what) {
    steps.add(Instant.ofEpochMilli(Workflow.currentTimeMillis()) + " " + what);
    log.info("{}: {}", subject, what);
    afterEachStep.run();
  }

  /** The latest step, null before the first. */
  public String last() {
    return steps.isEmpty() ? null : steps.get(steps.size() - 1);
  }

  public List<String> list() {
    return List.copyOf(steps);
  }
}
