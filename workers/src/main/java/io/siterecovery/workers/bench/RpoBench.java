package io.siterecovery.workers.bench;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.DevStack;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.time.LocalTime;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.LockSupport;

/**
 * True RPO under load: N VMs on dev's stack, each written at R MB/s through NBD, replicated at
 * a copy frequency F. Every second the target agent's inventory is read and each VM's RPO is
 * taken as now minus the seal time of its latest applied point: what an operator would lose if
 * the source vanished at that second, measured on the replica side, not what the workflow says.
 */
final class RpoBench {
  private static final long MIB = 1L << 20;
  private static final int BLOCK = 64 * 1024;
  private static final String POLICY = "rpo-bench";

  private final Path dir;
  private final PrintStream out;

  RpoBench(Path dir, PrintStream out) {
    this.dir = dir;
    this.out = out;
  }

  List<Measured> run(Bench.Rpo s) throws Exception {
    // Disks large enough that one cycle's writes stay under the 50 % "resync instead" rule.
    long disk = Math.max(256 * MIB, Math.round(4 * s.mbPerSecond() * MIB
        * s.frequency().toSeconds()) / MIB * MIB);
    SiteRecoveryConfig.Policy policy = new SiteRecoveryConfig.Policy(s.frequency(),
        s.frequency().plusSeconds(10), Duration.ofHours(1), null, null,
        new SiteRecoveryConfig.Window(LocalTime.MIDNIGHT, LocalTime.of(23, 59), "UTC"), false,
        null, null);
    try (DevStack stack = new DevStack(dir, new DevStack.Ports(0, 0, 0, 0, 0),
        Map.of(POLICY, policy))) {
      WorkflowClient client = stack.client();
      AgentClient primary = stack.operatorClient(stack.primary());
      AgentClient secondary = stack.operatorClient(stack.secondary());
      List<String> vms = new ArrayList<>();
      for (int i = 0; i < s.vms(); i++) {
        String vm = String.format("rpo%02d", i);
        vms.add(vm);
        primary.createVm(vm, List.of(disk));
        ProtectVmWorkflow p = client.newWorkflowStub(ProtectVmWorkflow.class, WorkflowOptions
            .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
            .setWorkflowId(ProtectVmWorkflow.workflowId(vm))
            .setStaticSummary(Summaries.protect(vm, POLICY)).build());
        WorkflowClient.start(p::protect, new ProtectVmInput(vm, POLICY));
      }
      long deadline = System.nanoTime() + Duration.ofMinutes(10).toNanos();
      for (String vm : vms) {
        ProtectVmWorkflow p = client.newWorkflowStub(ProtectVmWorkflow.class,
            ProtectVmWorkflow.workflowId(vm));
        while (p.status().state() != ProtectionState.PROTECTED) {
          if (System.nanoTime() > deadline) {
            throw new IllegalStateException(vm + " not protected after 10 minutes");
          }
          LockSupport.parkNanos(Duration.ofMillis(200).toNanos());
        }
      }
      AtomicBoolean writing = new AtomicBoolean(true);
      List<Thread> writers = new ArrayList<>();
      for (int i = 0; i < vms.size(); i++) {
        String vm = vms.get(i);
        long seed = i;
        Thread t = new Thread(() -> write(stack.primary().nbdPort(), vm, disk, s.mbPerSecond(),
            seed, writing), "rpo-writer-" + vm);
        t.setDaemon(true);
        t.start();
        writers.add(t);
      }
      List<Double> samples = new ArrayList<>();
      long start = System.nanoTime();
      long next = start;
      while (System.nanoTime() - start < s.duration().toNanos()) {
        next += Duration.ofSeconds(1).toNanos();
        Instant now = Instant.now();
        for (VmRecord r : secondary.listVms()) {
          if (r.replica() != null && r.replica().pointTime() != null
              && vms.contains(r.name())) {
            samples.add(Duration.between(r.replica().pointTime(), now).toMillis() / 1000.0);
          }
        }
        LockSupport.parkNanos(next - System.nanoTime()); // the sampling period
      }
      writing.set(false);
      for (Thread t : writers) {
        t.join(10_000);
      }
      Collections.sort(samples);
      double p50 = percentile(samples, 0.50);
      double p99 = percentile(samples, 0.99);
      double max = samples.isEmpty() ? Double.NaN : samples.get(samples.size() - 1);
      double target = s.frequency().toSeconds() + 10;
      out.printf(Locale.ROOT, "rpo: %d VMs x %.1f MB/s for %d s, cycle %d s: %d samples, true "
          + "RPO p50 %.1f s, p99 %.1f s, max %.1f s (target p99 <= %.0f s)%n", s.vms(),
          s.mbPerSecond(), s.duration().toSeconds(), s.frequency().toSeconds(), samples.size(),
          p50, p99, max, target);
      return List.of(new Measured(String.format(Locale.ROOT,
          "true RPO, %d VMs writing %.1f MB/s each for %d s, frequency %d s (replica side, "
              + "sampled every second)", s.vms(), s.mbPerSecond(), s.duration().toSeconds(),
          s.frequency().toSeconds()),
          String.format(Locale.ROOT, "p50 %.1f s, p99 %.1f s, max %.1f s", p50, p99, max),
          String.format(Locale.ROOT, "F + 10 s = %.0f s", target), p99 / target,
          "p99 ≤ F + 10 s", p99 <= target));
    }
  }

  /** Writes 64 KiB blocks at random offsets at {@code mbPerSecond}, until told to stop. */
  private static void write(int nbdPort, String vm, long disk, double mbPerSecond, long seed,
      AtomicBoolean writing) {
    Random random = new Random(seed);
    byte[] data = new byte[BLOCK];
    long interval = (long) (BLOCK / (mbPerSecond * 1e6) * 1e9);
    try (NbdClient nbd = new NbdClient("127.0.0.1", nbdPort, vm + "/disk0")) {
      long next = System.nanoTime();
      while (writing.get()) {
        random.nextBytes(data);
        nbd.write((long) random.nextInt((int) (disk / BLOCK)) * BLOCK, data, false);
        next += interval;
        LockSupport.parkNanos(next - System.nanoTime()); // the workload's pace
      }
      nbd.flush();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(vm + " writer failed", e);
    }
  }

  static double percentile(List<Double> sorted, double p) {
    if (sorted.isEmpty()) {
      return Double.NaN;
    }
    int i = (int) Math.ceil(p * sorted.size()) - 1;
    return sorted.get(Math.max(0, Math.min(sorted.size() - 1, i)));
  }
}
