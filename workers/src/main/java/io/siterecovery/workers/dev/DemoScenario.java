package io.siterecovery.workers.dev;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failover.FailoverInput;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.failover.FailoverWorkflow;
import io.siterecovery.workflows.protection.ProtectVmInput;
import io.siterecovery.workflows.protection.ProtectVmWorkflow;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.replication.InitialReplicationResult;
import io.siterecovery.workflows.replication.InitialReplicationWorkflow;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import java.io.IOException;
import java.io.PrintStream;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.Predicate;

/**
 * What a newcomer watches: two VMs written through NBD before, during and after initial
 * replication, protected with live progress, one failed over (planned) and committed, and the
 * replica verified byte for byte against the source at failover.
 */
public final class DemoScenario {
  private static final long MIB = 1 << 20;
  private static final Duration POLL = Duration.ofMillis(500);

  private final DevStack stack;
  private final WorkflowClient client;
  private final PrintStream out;
  private final Random random = new Random(42);

  public DemoScenario(DevStack stack, PrintStream out) {
    this.stack = stack;
    this.client = stack.client();
    this.out = out;
  }

  /** Runs the scenario; returns true when every replica disk matched its source. */
  public boolean run() throws Exception {
    long t0 = System.nanoTime();
    AgentClient primary = stack.operatorClient(stack.primary());
    out.println("== 1. create VMs on site primary ==");
    Map<String, List<Long>> vms = new LinkedHashMap<>();
    vms.put("web01", List.of(512 * MIB));
    vms.put("db01", List.of(512 * MIB, 256 * MIB));
    for (var vm : vms.entrySet()) {
      VmRecord r = primary.createVm(vm.getKey(), vm.getValue());
      out.printf("   %s: %s%n", r.name(), r.disks().stream().map(d -> d.name() + " "
          + d.sizeBytes() / MIB + " MiB -> " + stack.primary().nbdUri(r.name(), d.name())).toList());
    }
    long before = 0;
    for (var vm : vms.entrySet()) {
      for (int d = 0; d < vm.getValue().size(); d++) {
        before += writeRandom(stack.primary(), vm.getKey(), "disk" + d, 48, (int) MIB, false);
      }
    }
    out.printf("   wrote %d MiB of random data through NBD before protection%n", before / MIB);

    out.println("== 2. protect both (ProtectVm, policy default) while a writer keeps writing ==");
    AtomicBoolean writing = new AtomicBoolean(true);
    AtomicLong during = new AtomicLong();
    Thread writer = new Thread(() -> keepWriting(vms, writing, during), "demo-writer");
    writer.start();
    long protectStart = System.nanoTime();
    for (String vm : vms.keySet()) {
      ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class,
          WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
              .setWorkflowId(ProtectVmWorkflow.workflowId(vm)).build());
      WorkflowClient.start(wf::protect, new ProtectVmInput(vm, "default"));
    }
    Map<String, String> lastLine = new LinkedHashMap<>();
    awaitProtection(vms.keySet(), s -> s.state() == ProtectionState.PROTECTED, lastLine);
    writing.set(false);
    writer.join();
    double protectSeconds = (System.nanoTime() - protectStart) / 1e9;
    out.printf("   both protected in %.1f s; %d writes (%d MiB) landed during initial replication%n",
        protectSeconds, during.get(), during.get() * 64 * 1024 / MIB);

    out.println("== 3. write after protection, then wait for the next delta cycle (every 30 s) ==");
    long after = writeRandom(stack.primary(), "web01", "disk0", 16, 256 * 1024, true);
    out.printf("   wrote %d KiB to web01 with FUA%n", after / 1024);
    ProtectVmWorkflow web = client.newWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId("web01"));
    long cycles = web.status().deltaCycles();
    awaitProtection(List.of("web01"), s -> s.deltaCycles() > cycles, lastLine);
    ProtectionStatus webStatus = web.status();

    out.println("== 4. planned failover of web01 to site secondary ==");
    long foStart = System.nanoTime();
    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class, WorkflowOptions
        .newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(FailoverWorkflow.workflowId("web01")).build());
    WorkflowClient.start(fo::failover, new FailoverInput("web01", FailoverType.PLANNED, "LATEST"));
    FailoverStatus fs = awaitFailover(fo, FailoverState.AWAITING_COMMIT, 0);
    double failoverSeconds = (System.nanoTime() - foStart) / 1e9;

    out.println("== 5. verify: replica disks byte-identical to the source at failover ==");
    boolean verified = true;
    for (VmRecord.DiskSpec d : primary.getVm("web01").disks()) {
      long diff = DiskCompare.firstDifference(stack.primary().diskImage("web01", d.name()),
          stack.secondary().diskImage("web01", d.name()));
      out.printf("   web01/%s: %s%n", d.name(), diff < 0 ? "IDENTICAL (" + d.sizeBytes() / MIB
          + " MiB compared)" : "DIFFERS at byte " + diff);
      verified &= diff < 0;
    }

    out.println("== 6. commit ==");
    fo.commit(new OperatorRequest("demo"));
    fs = awaitFailover(fo, FailoverState.COMMITTED, fs.steps().size());
    try (NbdClient nbd = new NbdClient("127.0.0.1", stack.secondary().nbdPort(), "web01/disk0")) {
      nbd.write(0, "written on the secondary after commit".getBytes(), true);
    }
    out.printf("   web01 now runs on site secondary: nbd://127.0.0.1:%d/web01/disk0 took a write%n",
        stack.secondary().nbdPort());

    ProtectionStatus db = client.newWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId("db01")).status();
    out.println("== report ==");
    for (String vm : vms.keySet()) {
      InitialReplicationResult r = client.newUntypedWorkflowStub(
          InitialReplicationWorkflow.workflowId(vm)).getResult(InitialReplicationResult.class);
      out.printf("   %-6s initial replication: %d MiB scanned in %.1f s (%.0f MB/s), %d MiB sent, "
          + "zero ranges skipped%n", vm, r.bytesRead() / MIB, r.durationMillis() / 1e3,
          r.bytesRead() / 1e3 / Math.max(1, r.durationMillis()), r.bytesSent() / MIB);
    }
    out.printf("   web01  RPO before failover %s s, %d delta cycles, %d KiB shipped in logs%n",
        webStatus.rpoSeconds(), webStatus.deltaCycles(), webStatus.bytesShipped() / 1024);
    out.printf("   db01   %s, RPO %s s, latest point %s%n", db.state(), db.rpoSeconds(),
        db.latestRecoveryPoint() == null ? "-" : db.latestRecoveryPoint().id());
    out.printf("   web01  planned failover to AWAITING_COMMIT in %.1f s at point %s; %s%n",
        failoverSeconds, fs.recoveryPoint().id(), fs.state());
    out.printf("   verification: %s; demo took %.0f s%n", verified ? "PASSED" : "FAILED",
        (System.nanoTime() - t0) / 1e9);
    return verified;
  }

  private long writeRandom(HostAgent agent, String vm, String disk, int count, int size,
      boolean fua) throws IOException {
    try (NbdClient nbd = new NbdClient("127.0.0.1", agent.nbdPort(), vm + "/" + disk)) {
      byte[] data = new byte[size];
      long blocks = nbd.size() / size;
      for (int i = 0; i < count; i++) {
        random.nextBytes(data);
        nbd.write((long) (random.nextDouble() * blocks) * size, data, fua);
      }
      nbd.flush();
    }
    return (long) count * size;
  }

  private void keepWriting(Map<String, List<Long>> vms, AtomicBoolean writing, AtomicLong count) {
    List<NbdClient> clients = new ArrayList<>();
    try {
      for (var vm : vms.entrySet()) {
        for (int d = 0; d < vm.getValue().size(); d++) {
          clients.add(new NbdClient("127.0.0.1", stack.primary().nbdPort(), vm.getKey() + "/disk" + d));
        }
      }
      Random r = new Random(7);
      byte[] data = new byte[64 * 1024];
      while (writing.get()) {
        NbdClient c = clients.get(r.nextInt(clients.size()));
        r.nextBytes(data);
        c.write((long) (r.nextDouble() * (c.size() / data.length)) * data.length, data, false);
        count.incrementAndGet();
        // Pace the writer like a busy VM rather than a benchmark: about 2 MB/s.
        LockSupport.parkNanos(30_000_000);
      }
      for (NbdClient c : clients) {
        c.flush();
        c.close();
      }
    } catch (IOException e) {
      throw new IllegalStateException("demo writer failed", e);
    }
  }

  private void awaitProtection(Iterable<String> vms, Predicate<ProtectionStatus> done,
      Map<String, String> lastLine) {
    while (true) {
      boolean all = true;
      for (String vm : vms) {
        ProtectionStatus s = client.newWorkflowStub(ProtectVmWorkflow.class,
            ProtectVmWorkflow.workflowId(vm)).status();
        String line = "   " + String.format("%-6s ", vm) + (s.progress() != null
            ? ProgressLine.of(s.progress())
            : s.state() + (s.latestRecoveryPoint() == null ? ""
                : "  point " + s.latestRecoveryPoint().id() + ", RPO " + s.rpoSeconds() + " s"));
        if (!line.equals(lastLine.put(vm, line))) {
          out.println(line);
        }
        all &= done.test(s);
      }
      if (all) {
        return;
      }
      LockSupport.parkNanos(POLL.toNanos());
    }
  }

  private FailoverStatus awaitFailover(FailoverWorkflow fo, FailoverState target, int printed) {
    int shown = printed;
    while (true) {
      FailoverStatus s = fo.status();
      for (; shown < s.steps().size(); shown++) {
        out.println("   " + s.steps().get(shown));
      }
      if (s.state() == target) {
        return s;
      }
      if (s.state() == FailoverState.FAILED) {
        throw new IllegalStateException("failover failed: " + s.error());
      }
      LockSupport.parkNanos(POLL.toNanos());
    }
  }
}
