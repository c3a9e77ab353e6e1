package io.siterecovery.workers.bench;

import io.siterecovery.agent.Json;
import io.siterecovery.workers.dev.FreePorts;
import io.siterecovery.workers.dev.WorkerRunner;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.common.SiteRecoveryDataConverter;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.temporal.api.common.v1.WorkflowExecution;
import io.temporal.api.enums.v1.PendingActivityState;
import io.temporal.api.workflow.v1.PendingActivityInfo;
import io.temporal.api.workflowservice.v1.DescribeWorkflowExecutionRequest;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.testserver.TestServer;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * {@code kill -9} of the worker in the middle of an initial copy, as DESIGN.md's table asks: the
 * embedded Temporal server and two agents in this process, the worker in a JVM of its own
 * ({@code site-recovery worker}), a disk copied at a capped rate. The worker is killed once a
 * quarter of the disk is across and a new one started at once; the figures are the time from the
 * kill until the copy runs again (the server notices the lost worker at the heartbeat timeout,
 * then retries) and the bytes sent twice: how far the dead worker's last call got, less the
 * heartbeat offset the new attempt resumes at. The replica is then compared with the source.
 */
final class WorkerKillBench {
  private static final long MIB = 1L << 20;
  private static final String VM = "killed";
  private static final double MBPS = 2.0;
  /** InitialReplicationWorkflow's id for the VM. */
  private static final String COPY_WORKFLOW = ProtectVmWorkflow.workflowId(VM) + "-initial";

  private final Path dir;
  private final PrintStream out;

  WorkerKillBench(Path dir, PrintStream out) {
    this.dir = dir;
    this.out = out;
  }

  List<Measured> run(long size) throws Exception {
    int port = FreePorts.next();
    try (TestServer.PortBoundTestServer server = TestServer.createPortBoundServer(port, true);
        LocalSites sites = new LocalSites(dir.resolve("agents"))) {
      sites.source.createVm(VM, List.of(size));
      Path source = sites.primary.diskImage(VM, "disk0");
      DiskFiles.fillRandom(source, size, 17);
      Path config = Files.writeString(dir.resolve("worker.json"), Json.MAPPER.writeValueAsString(
          Map.of("temporal", "127.0.0.1:" + port,
              "sites", Map.of("primary", sites.primary.url(), "secondary", sites.secondary.url()),
              "partners", Map.of("primary", "secondary", "secondary", "primary"),
              "certs", LocalSites.certs().toString(),
              "policies", Map.of("bench", Map.of("bandwidthMBps", MBPS,
                  "copyFrequency", "PT1M")))));
      WorkflowServiceStubs service = WorkerRunner.connect("127.0.0.1:" + port);
      List<Process> workers = new ArrayList<>();
      try {
        WorkflowClient client = WorkerRunner.client(service, "default");
        workers.add(worker(config, 1));
        ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class,
            WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
                .setWorkflowId(ProtectVmWorkflow.workflowId(VM))
                .setStaticSummary(Summaries.protect(VM, "bench")).build());
        WorkflowClient.start(wf::protect, new ProtectVmInput(VM, "bench"));

        PendingActivityInfo before = awaitCopy(service, a -> heartbeat(a) >= size / 4, 120);
        workers.get(0).destroyForcibly().waitFor();
        long killed = System.nanoTime();
        workers.add(worker(config, 2));
        // The dead worker's last agent call ends by itself within its 3 s budget.
        Thread.sleep(5000);
        long reached = copiedPrefix(source, sites.secondary.diskImage(VM, "disk0"), size);
        PendingActivityInfo resumed = awaitCopy(service, a -> a.getAttempt() > before.getAttempt()
            && a.getState() == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED, 120);
        double resumeSeconds = (System.nanoTime() - killed) / 1e9;
        long resumedAt = heartbeat(resumed);
        long resent = Math.max(0, reached - resumedAt);
        // The replica, not the workflows: the embedded test server keeps sending workflow tasks
        // (and queries) to the dead worker's sticky queue, where a real server gives up after 5 s.
        awaitReplica(source, sites.secondary.diskImage(VM, "disk0"), size, 300);
        boolean identical = DiskFiles.identical(source, sites.secondary.diskImage(VM, "disk0"));
        // What one heartbeat interval carries at this rate: the worker throttles to 4 s.
        long interval = (long) (MBPS * 1e6 * 4);
        out.printf(java.util.Locale.ROOT, "worker kill -9 at byte %d of %d (%.1f MB/s): copy "
            + "running again after %.1f s at byte %d; the dead worker had reached %d, so %d "
            + "bytes (%.1f s of link) were sent again; replica %s%n", heartbeat(before), size,
            MBPS, resumeSeconds, resumedAt, reached, resent, resent / (MBPS * 1e6),
            identical ? "identical" : "NOT identical");
        return List.of(
            new Measured("worker kill -9 during a copy: time to resume",
                String.format(java.util.Locale.ROOT, "%.1f s", resumeSeconds), "—",
                resumeSeconds / 30, "≤ 30 s", resumeSeconds <= 30 && identical),
            new Measured("worker kill -9 during a copy: bytes sent again",
                String.format(java.util.Locale.ROOT, "%.1f MB%s", resent / 1e6,
                    identical ? "" : " (replica NOT identical)"),
                String.format(java.util.Locale.ROOT, "%.1f MB (4 s at %.0f MB/s)",
                    interval / 1e6, MBPS), (double) resent / interval, "≤ 1.0×",
                resent <= interval && identical));
      } finally {
        for (Process w : workers) {
          w.destroyForcibly().waitFor();
        }
        service.shutdownNow();
      }
    }
  }

  private Process worker(Path config, int n) throws IOException {
    List<String> command = AgentProcess.javaCommand(
        io.siterecovery.workers.cli.SiteRecoveryCli.class.getName(), List.of("-Xmx256m"));
    command.addAll(List.of("worker", "--config", config.toString(), "--http-port", "0"));
    ProcessBuilder builder = new ProcessBuilder(command)
        .redirectErrorStream(true).redirectOutput(dir.resolve("worker-" + n + ".log").toFile());
    builder.environment().put("SITE_RECOVERY_LOG_FILE", dir.resolve("worker-" + n + ".log.file")
        .toString());
    return builder.start();
  }

  /** The copy activity of the initial replication, once it matches {@code condition}. */
  private static PendingActivityInfo awaitCopy(WorkflowServiceStubs service,
      java.util.function.Predicate<PendingActivityInfo> condition, int seconds)
      throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    PendingActivityInfo last = null;
    while (System.nanoTime() < deadline) {
      try {
        last = service.blockingStub().describeWorkflowExecution(
            DescribeWorkflowExecutionRequest.newBuilder().setNamespace("default")
                .setExecution(WorkflowExecution.newBuilder()
                    .setWorkflowId(COPY_WORKFLOW))
                .build()).getPendingActivitiesList().stream()
            .filter(a -> a.getActivityType().getName().equals("CopyDisk")).findFirst()
            .orElse(null);
      } catch (io.grpc.StatusRuntimeException notYet) {
        last = null;
      }
      if (last != null && condition.test(last)) {
        return last;
      }
      Thread.sleep(100);
    }
    throw new IllegalStateException("the copy activity never got there; last seen: " + last);
  }

  private static void awaitReplica(Path source, Path replica, long size, int seconds)
      throws IOException, InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
    while (copiedPrefix(source, replica, size) < size) {
      if (System.nanoTime() > deadline) {
        throw new IllegalStateException("the copy did not finish after the worker kill");
      }
      Thread.sleep(500);
    }
  }

  private static long heartbeat(PendingActivityInfo a) {
    if (!a.hasHeartbeatDetails()) {
      return 0;
    }
    return SiteRecoveryDataConverter.create().fromPayloads(0,
        Optional.of(a.getHeartbeatDetails()), Long.class, Long.class);
  }

  /** How far the replica equals the source from the start, in 64 KiB blocks (random data). */
  private static long copiedPrefix(Path source, Path replica, long size) throws IOException {
    int block = 64 << 10;
    ByteBuffer a = ByteBuffer.allocate(block);
    ByteBuffer b = ByteBuffer.allocate(block);
    try (FileChannel s = FileChannel.open(source, StandardOpenOption.READ);
        FileChannel r = FileChannel.open(replica, StandardOpenOption.READ)) {
      for (long at = 0; at < size; at += block) {
        a.clear();
        b.clear();
        s.read(a, at);
        r.read(b, at);
        if (!a.flip().equals(b.flip())) {
          return at;
        }
      }
      return size;
    }
  }

}
