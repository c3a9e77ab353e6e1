package io.siterecovery.workers.bench;

import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.DevStack;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failover.CleanupRequest;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.client.WorkflowStub;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * The lifecycle's rows, through the workflows on {@code dev}'s stack: time to TESTING of a test
 * failover for a 16 GiB VM against a 1 GiB one (both sparse, the same data written), and the bytes
 * Reprotect sends back after a planned failover against the bytes written on the new site.
 */
final class LifecycleBench {
  private static final long MIB = 1L << 20;
  private static final long GIB = 1L << 30;
  private static final int RUNS = 3;
  private static final SiteRecoveryConfig.Policy BENCH = new SiteRecoveryConfig.Policy(
      Duration.ofSeconds(2), Duration.ofMinutes(2), Duration.ofHours(1), null, null, null, false,
      null, null);

  private final Path dir;
  private final PrintStream out;
  private WorkflowClient client;

  LifecycleBench(Path dir, PrintStream out) {
    this.dir = dir;
    this.out = out;
  }

  List<Measured> run() throws Exception {
    try (DevStack stack = new DevStack(dir, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of("bench", BENCH))) {
      client = stack.client();
      Random random = new Random(17);
      for (String vm : List.of("small", "large")) {
        stack.operatorClient(stack.primary()).createVm(vm, List.of(vm.equals("small") ? GIB
            : 16 * GIB));
        write(stack.primary().nbdPort(), vm, random, 256, 256 * 1024); // 64 MiB of data
        protect(vm);
      }
      double small = timeToTesting("small");
      double large = timeToTesting("large");
      out.printf(Locale.ROOT, "test failover: TESTING after %.2f s (16 GiB) and %.2f s (1 GiB), "
          + "median of %d%n", large, small, RUNS);
      List<Measured> rows = new ArrayList<>();
      rows.add(new Measured("test failover of a 16 GiB VM, time to TESTING",
          String.format(Locale.ROOT, "%.2f s", large),
          String.format(Locale.ROOT, "1 GiB: %.2f s", small), large / small,
          "≤ 2 s for both", large <= 2 && small <= 2));

      FailoverWorkflow failover = stub(FailoverWorkflow.class, FailoverWorkflow.workflowId("small"),
          Summaries.failover(FailoverType.PLANNED, "small", "LATEST", null));
      WorkflowClient.start(failover::failover,
          new FailoverInput("small", FailoverType.PLANNED, "LATEST"));
      await(() -> failover.status().state() == FailoverState.AWAITING_COMMIT);
      long written = write(stack.secondary().nbdPort(), "small", random, 2048, 4096);
      failover.commit(new OperatorRequest("bench"));
      WorkflowStub.fromTyped(failover).getResult(Object.class);
      written += write(stack.secondary().nbdPort(), "small", random, 2048, 4096);
      ReprotectStatus back = stub(ReprotectWorkflow.class, ReprotectWorkflow.workflowId("small"),
          Summaries.reprotect("small", "bench"))
          .reprotect(new ReprotectInput("small", false, "bench"));
      double ratio = (double) back.bytesSent() / written;
      out.printf(Locale.ROOT, "reprotect: %s, %d bytes sent for %d written (4 KiB random writes, "
          + "half before the commit and half after)%n", back.mode(), back.bytesSent(), written);
      rows.add(new Measured("reverse replication after a planned failover (bytes sent)",
          mib(back.bytesSent()), "written: " + mib(written), ratio, "≤ 1.1×",
          ratio <= 1.1));
      return rows;
    }
  }

  private void protect(String vm) {
    ProtectVmWorkflow wf = stub(ProtectVmWorkflow.class, ProtectVmWorkflow.workflowId(vm),
        Summaries.protect(vm, "bench"));
    WorkflowClient.start(wf::protect, new ProtectVmInput(vm, "bench"));
    await(() -> wf.status().state() == ProtectionState.PROTECTED);
  }

  /** Median seconds from starting a TEST failover to TESTING; each test is cleaned up after. */
  private double timeToTesting(String vm) {
    List<Double> times = new ArrayList<>();
    for (int i = 0; i < RUNS; i++) {
      FailoverWorkflow test = stub(FailoverWorkflow.class, FailoverWorkflow.testWorkflowId(vm),
          Summaries.failover(FailoverType.TEST, vm, "LATEST", null));
      long t = System.nanoTime();
      WorkflowClient.start(test::failover, new FailoverInput(vm, FailoverType.TEST, "LATEST"));
      await(() -> test.status().state() == FailoverState.TESTING);
      times.add((System.nanoTime() - t) / 1e9);
      test.cleanup(new CleanupRequest("bench"));
      WorkflowStub.fromTyped(test).getResult(Object.class);
    }
    return Measured.median(times);
  }

  private static String mib(long bytes) {
    return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) MIB);
  }

  private <T> T stub(Class<T> type, String id, String summary) {
    return client.newWorkflowStub(type, WorkflowOptions.newBuilder()
        .setTaskQueue(Registration.TASK_QUEUE).setWorkflowId(id).setStaticSummary(summary)
        .build());
  }

  private static long write(int port, String vm, Random random, int count, int size)
      throws IOException {
    try (NbdClient nbd = new NbdClient("127.0.0.1", port, vm + "/disk0")) {
      byte[] data = new byte[size];
      long blocks = nbd.size() / size;
      for (int i = 0; i < count; i++) {
        random.nextBytes(data);
        nbd.write((long) (random.nextDouble() * blocks) * size, data, false);
      }
      nbd.flush();
    }
    return (long) count * size;
  }

  private static void await(BooleanSupplier condition) {
    long deadline = System.nanoTime() + Duration.ofMinutes(5).toNanos();
    while (!condition.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("the lifecycle benchmark waited 5 minutes for a state");
      }
      LockSupport.parkNanos(Duration.ofMillis(20).toNanos());
    }
  }
}
