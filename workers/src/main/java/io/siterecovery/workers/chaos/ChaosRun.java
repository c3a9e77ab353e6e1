package io.siterecovery.workers.chaos;

import io.siterecovery.workers.chaos.Scenario.Fault;
import io.siterecovery.workers.chaos.Scenario.Phase;
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
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.plan.PlanOperation;
import io.siterecovery.workflows.plan.PlanState;
import io.siterecovery.workflows.plan.RecoveryPlanInput;
import io.siterecovery.workflows.plan.RecoveryPlanWorkflow;
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectState;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowOptions;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * One chaos run on a fresh VM of the harness: protection started while the VM writes, the
 * scenario's phase reached, the fault injected at a seeded random moment of it, the time until
 * the product recovered, then the verdict of oracles we did not write at a quiesced point.
 */
final class ChaosRun {
  /** The VM of a run: one disk, most of it written before protection starts. */
  record Vm(long diskBytes, long prefillBytes) {
    static final Vm NORMAL = new Vm(128L << 20, 96L << 20);
    /** Small enough for a replica on a 64 MiB tmpfs, with room for its logs and undo data. */
    static final Vm SMALL = new Vm(16L << 20, 8L << 20);
  }

  private static final String DISK0 = "disk0";
  private static final Duration PHASE_LIMIT = Duration.ofMinutes(3);

  private final ChaosHarness harness;
  private final WorkflowClient client;
  private final PrintStream out;
  private final Vm size;
  /** What was seen while the fault lasted (the health a full disk showed), for the report. */
  private String duringFault = "";
  /** The writes of a plan run's second VM, or null. */
  private Workload second;

  ChaosRun(ChaosHarness harness, Vm size, PrintStream out) {
    this.harness = harness;
    this.size = size;
    this.client = harness.client();
    this.out = out;
  }

  RunResult run(int number, Scenario scenario, long seed) throws Exception {
    String vm = "c" + number;
    Random random = new Random(seed);
    duringFault = "";
    harness.primaryAgent().createVm(vm, List.of(size.diskBytes()));
    long linkStart = harness.link.bytesToTarget();
    try (Workload writes = new Workload(vm + "/" + DISK0, harness::primaryNbd, size.diskBytes(),
        random.nextLong(), 8)) {
      writes.prefill(size.prefillBytes());
      writes.start();
      writes.resume();
      ProtectVmWorkflow protection = client.newWorkflowStub(ProtectVmWorkflow.class,
          options(ProtectVmWorkflow.workflowId(vm), Summaries.protect(vm, ChaosHarness.POLICY)));
      WorkflowClient.start(protection::protect, new ProtectVmInput(vm, ChaosHarness.POLICY));
      ProtectVmWorkflow running = client.newWorkflowStub(ProtectVmWorkflow.class,
          ProtectVmWorkflow.workflowId(vm));
      ProtectVmWorkflow runningB = null;
      if (scenario.phase() == Phase.PLAN) { // the plan's second VM, writing too
        if (number > ChaosHarness.PLANNED_RUNS) {
          throw new IllegalStateException("no plan configured for run " + number);
        }
        String vmB = ChaosHarness.secondVmOf(vm);
        harness.primaryAgent().createVm(vmB, List.of(size.diskBytes()));
        second = new Workload(vmB + "/" + DISK0, harness::primaryNbd, size.diskBytes(),
            random.nextLong(), 8);
        second.prefill(size.prefillBytes());
        second.start();
        second.resume();
        WorkflowClient.start(client.newWorkflowStub(ProtectVmWorkflow.class,
            options(ProtectVmWorkflow.workflowId(vmB),
                Summaries.protect(vmB, ChaosHarness.POLICY)))::protect,
            new ProtectVmInput(vmB, ChaosHarness.POLICY));
        runningB = client.newWorkflowStub(ProtectVmWorkflow.class,
            ProtectVmWorkflow.workflowId(vmB));
      }
      ProtectVmWorkflow protectionB = runningB;

      // 1. reach the phase, wait a seeded random moment into it, and break something.
      Phase phase = scenario.phase();
      if (phase == Phase.INITIAL_COPY) {
        require(vm, "initial replication", () -> state(running) == ProtectionState.INITIAL_REPLICATION);
      } else {
        require(vm, "protected", () -> state(running) == ProtectionState.PROTECTED
            && harness.replicaPointTime(vm) != null);
        if (protectionB != null) {
          String vmB = ChaosHarness.secondVmOf(vm);
          require(vmB, "protected", () -> state(protectionB) == ProtectionState.PROTECTED
              && harness.replicaPointTime(vmB) != null);
        }
      }
      FailoverWorkflow failover = null;
      double maxDelay = switch (phase) {
        case INITIAL_COPY -> 2.0;
        case DELTA -> harness.copyFrequency.toMillis() / 1000.0;
        case RESYNC, TEST_FAILOVER -> 0.5;
        case PLANNED_FAILOVER -> 1.0;
        case REPROTECT -> 3.0;
        case PLAN -> 0.25; // a 2-VM plan awaits cleanup, and cleans up, in well under 1 s
      };
      ReprotectWorkflow reprotect = null;
      java.util.concurrent.atomic.AtomicBoolean cleanupSent =
          new java.util.concurrent.atomic.AtomicBoolean();
      switch (phase) {
        case RESYNC -> {
          running.resync(new OperatorRequest("chaos"));
          require(vm, "resyncing", () -> state(running) == ProtectionState.RESYNCING);
        }
        case PLANNED_FAILOVER -> {
          writes.pause(); // the source is shut down: its writer stops first, as a VM would
          failover = client.newWorkflowStub(FailoverWorkflow.class,
              options(FailoverWorkflow.workflowId(vm),
                  Summaries.failover(FailoverType.PLANNED, vm, "LATEST", null)));
          WorkflowClient.start(failover::failover,
              new FailoverInput(vm, FailoverType.PLANNED, "LATEST"));
        }
        case TEST_FAILOVER -> {
          failover = client.newWorkflowStub(FailoverWorkflow.class,
              options(FailoverWorkflow.testWorkflowId(vm),
                  Summaries.failover(FailoverType.TEST, vm, "LATEST", null)));
          WorkflowClient.start(failover::failover,
              new FailoverInput(vm, FailoverType.TEST, "LATEST"));
        }
        case REPROTECT -> {
          // planned failover, committed; then Reprotect, and the fault while it runs. No writer
          // after the failover: the two images are compared at the reverse protection's point.
          writes.pause();
          FailoverWorkflow planned = client.newWorkflowStub(FailoverWorkflow.class,
              options(FailoverWorkflow.workflowId(vm),
                  Summaries.failover(FailoverType.PLANNED, vm, "LATEST", null)));
          WorkflowClient.start(planned::failover,
              new FailoverInput(vm, FailoverType.PLANNED, "LATEST"));
          FailoverWorkflow f = client.newWorkflowStub(FailoverWorkflow.class,
              FailoverWorkflow.workflowId(vm));
          require(vm, "failover awaiting commit",
              () -> failoverReached(f, FailoverState.AWAITING_COMMIT));
          f.commit(new OperatorRequest("chaos"));
          require(vm, "failover committed", () -> failoverReached(f, FailoverState.COMMITTED));
          failover = f;
          reprotect = client.newWorkflowStub(ReprotectWorkflow.class,
              options(ReprotectWorkflow.workflowId(vm),
                  Summaries.reprotect(vm, ChaosHarness.POLICY)));
          WorkflowClient.start(reprotect::reprotect,
              new ReprotectInput(vm, false, ChaosHarness.POLICY));
        }
        case PLAN -> {
          RecoveryPlanWorkflow plan = client.newWorkflowStub(RecoveryPlanWorkflow.class,
              options(RecoveryPlanWorkflow.workflowId(ChaosHarness.planOf(number)),
                  Summaries.plan(ChaosHarness.planOf(number), PlanOperation.TEST_FAILOVER)));
          WorkflowClient.start(plan::run, new RecoveryPlanInput(ChaosHarness.planOf(number),
              PlanOperation.TEST_FAILOVER, "LATEST", null));
          // The plan awaits cleanup within about a second: half the runs break its test
          // failovers, the other half its cleanup.
          if (random.nextBoolean()) {
            RecoveryPlanWorkflow p = client.newWorkflowStub(RecoveryPlanWorkflow.class,
                RecoveryPlanWorkflow.workflowId(ChaosHarness.planOf(number)));
            require(vm, "plan awaiting cleanup", () -> planReached(p, PlanState.AWAITING_CLEANUP));
            p.cleanup(new CleanupRequest("chaos run " + number));
            cleanupSent.set(true);
          }
        }
        default -> { }
      }
      RecoveryPlanWorkflow pl = phase != Phase.PLAN ? null : client.newWorkflowStub(
          RecoveryPlanWorkflow.class, RecoveryPlanWorkflow.workflowId(ChaosHarness.planOf(number)));
      ReprotectWorkflow rp = reprotect == null ? null : client.newWorkflowStub(
          ReprotectWorkflow.class, ReprotectWorkflow.workflowId(vm));
      double delay = random.nextDouble() * maxDelay;
      LockSupport.parkNanos((long) (delay * 1e9)); // the random moment itself, not a wait
      String moment = String.format(Locale.ROOT, "%s +%.1fs (%s)",
          phase.name().toLowerCase(Locale.ROOT).replace('_', '-'), delay,
          rp != null ? reprotectState(rp) : pl != null ? planState(pl)
              : observed(running, failover));
      out.printf("run %d: %s at %s%n", number, scenario.name(), moment);
      Instant faultEnd = inject(scenario, running, writes);

      // 2. recovery: the interrupted operation completes, or a later point is applied.
      FailoverWorkflow fo = failover == null ? null : client.newWorkflowStub(
          FailoverWorkflow.class, phase == Phase.TEST_FAILOVER
              ? FailoverWorkflow.testWorkflowId(vm) : FailoverWorkflow.workflowId(vm));
      BooleanSupplier recovered = switch (phase) {
        case INITIAL_COPY -> () -> state(running) == ProtectionState.PROTECTED;
        case DELTA, RESYNC -> () -> state(running) == ProtectionState.PROTECTED
            && after(harness.replicaPointTime(vm), faultEnd);
        case PLANNED_FAILOVER -> () -> failoverReached(fo, FailoverState.AWAITING_COMMIT);
        case TEST_FAILOVER -> () -> failoverReached(fo, FailoverState.TESTING);
        case PLAN -> () -> { // test VMs up, then cleaned up: the plan COMPLETED
          if (!cleanupSent.get() && planReached(pl, PlanState.AWAITING_CLEANUP)) {
            pl.cleanup(new CleanupRequest("chaos run " + number));
            cleanupSent.set(true);
          }
          return planReached(pl, PlanState.COMPLETED);
        };
        case REPROTECT -> () -> reprotected(rp) && state(running) == ProtectionState.PROTECTED
            && harness.reverseReplicaPointTime(vm) != null;
      };
      Double seconds;
      try {
        seconds = await(scenario.limit(), recovered);
      } catch (GaveUp e) {
        return result(number, scenario, moment, null, linkStart, writes, 0, false, false,
            "not recovered: " + e.getMessage());
      }
      if (seconds == null) {
        return result(number, scenario, moment, null, linkStart, writes, 0, false, false,
            "not recovered within " + scenario.limit().toSeconds() + " s; "
                + describe(running, fo));
      }
      out.printf(Locale.ROOT, "run %d: recovered %.1f s after the fault%n", number, seconds);
      if (phase == Phase.TEST_FAILOVER) {
        fo.cleanup(new CleanupRequest("chaos run " + number));
        if (await(PHASE_LIMIT, () -> failoverState(fo) == FailoverState.CLEANED_UP) == null) {
          return result(number, scenario, moment, seconds, linkStart, writes, 0, false, false,
              "test VM not cleaned up: " + describe(running, fo));
        }
      }

      // 3. the quiesced point: no write in flight, and every acknowledged one replicated.
      if (phase == Phase.REPROTECT) { // reverse protection: a point after the writes stopped
        Instant quiet = Instant.now();
        if (await(PHASE_LIMIT, () -> after(harness.reverseReplicaPointTime(vm), quiet)) == null) {
          return result(number, scenario, moment, seconds, linkStart, writes, 0, false, false,
              "no reverse recovery point: " + describe(running, fo));
        }
      } else if (phase != Phase.PLANNED_FAILOVER) { // a planned failover's replica is that point
        writes.pause();
        Instant quiet = Instant.now();
        if (await(PHASE_LIMIT, () -> after(harness.replicaPointTime(vm), quiet)) == null) {
          return result(number, scenario, moment, seconds, linkStart, writes, 0, false, false,
              "no recovery point after the writes stopped: " + describe(running, fo));
        }
      }
      // after Reprotect the secondary's image is the source and the primary's the replica
      Path source = phase == Phase.REPROTECT ? harness.replicaImage(vm, DISK0)
          : harness.sourceImage(vm, DISK0);
      Path replica = phase == Phase.REPROTECT ? harness.sourceImage(vm, DISK0)
          : harness.replicaImage(vm, DISK0);
      long lost = Math.max(writes.lostBlocks(source), writes.lostBlocks(replica));
      String compare = qemuImgCompare(source, replica);
      String bothCompared = compare;
      if (second != null) { // the plan's second VM: its own quiesced point and oracles
        String vmB = ChaosHarness.secondVmOf(vm);
        second.pause();
        Instant quietB = Instant.now();
        if (await(PHASE_LIMIT, () -> after(harness.replicaPointTime(vmB), quietB)) == null) {
          return result(number, scenario, moment, seconds, linkStart, writes, lost, false, false,
              "no recovery point of " + vmB + " after its writes stopped");
        }
        Path sourceB = harness.sourceImage(vmB, DISK0);
        Path replicaB = harness.replicaImage(vmB, DISK0);
        lost += Math.max(second.lostBlocks(sourceB), second.lostBlocks(replicaB));
        String compareB = qemuImgCompare(sourceB, replicaB);
        compare = compare.startsWith("identical") ? compareB : compare;
        bothCompared = compare;
        compare = vm + " and " + vmB + ": " + compare + ", " + vmB + " "
            + second.acknowledgedWrites() + " acknowledged writes checked";
      }
      boolean corrupt = !bothCompared.startsWith("identical");
      return result(number, scenario, moment, seconds, linkStart, writes, lost, corrupt, true,
          compare + ", " + writes.acknowledgedWrites() + " acknowledged writes checked"
              + duringFault);
    } finally {
      if (second != null) {
        second.close();
        second = null;
        for (String id : List.of(RecoveryPlanWorkflow.workflowId(ChaosHarness.planOf(number)),
            FailoverWorkflow.testWorkflowId(ChaosHarness.secondVmOf(vm)),
            ProtectVmWorkflow.workflowId(ChaosHarness.secondVmOf(vm)))) {
          try {
            client.newUntypedWorkflowStub(id).terminate("chaos run " + number + " done");
          } catch (RuntimeException notRunning) {
            // never started, or already ended
          }
        }
      }
      for (String id : List.of(ReprotectWorkflow.workflowId(vm),
          FailoverWorkflow.testWorkflowId(vm),
          FailoverWorkflow.workflowId(vm), ProtectVmWorkflow.workflowId(vm))) {
        try { // the run is over: its workflows go, so that the next run has the stack to itself
          client.newUntypedWorkflowStub(id).terminate("chaos run " + number + " done");
        } catch (RuntimeException notRunning) {
          // never started, or already ended
        }
      }
    }
  }

  private Instant inject(Scenario scenario, ProtectVmWorkflow running, Workload writes)
      throws IOException, InterruptedException {
    switch (scenario.fault()) {
      case WORKER_KILL -> {
        harness.killWorker();
        harness.startWorker();
      }
      case SOURCE_AGENT_KILL -> {
        harness.killPrimary();
        harness.startPrimary();
      }
      case REPLICA_AGENT_KILL -> {
        harness.killSecondary();
        harness.startSecondary();
      }
      case LINK_CUT -> {
        harness.link.cut();
        Thread.sleep(scenario.faultLength().toMillis()); // the length of the fault itself
        harness.link.heal();
      }
      case PEER_SILENT -> {
        harness.link.silence();
        Thread.sleep(scenario.faultLength().toMillis());
        harness.link.heal();
      }
      case LINK_RESET -> harness.link.resetAll();
      case REPLICA_DISK_FULL -> {
        Path filler = harness.secondaryData().resolve("chaos-filler");
        long filled = DiskFiller.fill(filler);
        java.util.Set<String> health = new java.util.TreeSet<>();
        long end = System.nanoTime() + scenario.faultLength().toNanos();
        while (System.nanoTime() < end) { // watching what the operator sees while it lasts
          try {
            ProtectionStatus s = running.status();
            health.add(s.health() + (s.healthReasons().isEmpty() ? ""
                : " " + s.healthReasons().get(0)));
          } catch (RuntimeException notNow) {
            // the query failed; try again
          }
          LockSupport.parkNanos(Duration.ofMillis(500).toNanos());
        }
        java.nio.file.Files.delete(filler);
        duringFault = "; while full (" + filled / (1 << 20) + " MiB filler): " + health;
      }
      case SOURCE_DISK_FULL -> {
        // The writer keeps writing: a write the agent cannot record in the .hrl (or store in
        // the sparse image) must fail with EIO, stay unacknowledged, and be retried with the same
        // bytes once space returns; the oracles below then check every acknowledged write.
        Path filler = harness.primaryData().resolve("chaos-filler");
        long failedBefore = writes.failedAttempts();
        long ackBefore = writes.acknowledgedWrites();
        long filled = DiskFiller.fill(filler);
        java.util.Set<String> health = new java.util.TreeSet<>();
        long end = System.nanoTime() + scenario.faultLength().toNanos();
        while (System.nanoTime() < end) {
          try {
            ProtectionStatus s = running.status();
            health.add(s.health() + (s.healthReasons().isEmpty() ? ""
                : " " + s.healthReasons().get(0)));
          } catch (RuntimeException notNow) {
            // the query failed; try again
          }
          LockSupport.parkNanos(Duration.ofMillis(500).toNanos());
        }
        long failedWhileFull = writes.failedAttempts() - failedBefore;
        long ackWhileFull = writes.acknowledgedWrites() - ackBefore;
        java.nio.file.Files.delete(filler);
        duringFault = "; while full (" + filled / (1 << 20) + " MiB filler): "
            + failedWhileFull + " writes failed (not acknowledged, retried), "
            + ackWhileFull + " acknowledged, health " + health;
      }
    }
    return Instant.now();
  }

  private RunResult result(int number, Scenario scenario, String moment, Double seconds,
      long linkStart, Workload writes, long lost, boolean corrupt, boolean verified,
      String verification) {
    long payload = writes.acknowledgedWrites() * Workload.BLOCK;
    return new RunResult(number, scenario, moment, seconds,
        harness.link.bytesToTarget() - linkStart, payload, lost, corrupt, verified, verification);
  }

  /** {@code qemu-img compare} of the two raw images: "identical", or what it said. */
  static String qemuImgCompare(Path a, Path b) throws IOException, InterruptedException {
    Process p;
    try {
      p = new ProcessBuilder("qemu-img", "compare", "-q", "-f", "raw", "-F", "raw",
          a.toString(), b.toString()).redirectErrorStream(true).start();
    } catch (IOException notInstalled) {
      long diff = io.siterecovery.workers.dev.DiskCompare.firstDifference(a, b);
      return diff < 0 ? "identical (byte compare; qemu-img not installed)"
          : "differ at byte " + diff + " (byte compare; qemu-img not installed)";
    }
    String said = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).trim();
    if (!p.waitFor(10, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      return "qemu-img compare timed out";
    }
    return switch (p.exitValue()) {
      case 0 -> "identical (qemu-img compare)";
      case 1 -> "qemu-img compare: images differ " + said;
      default -> "qemu-img compare failed (" + p.exitValue() + "): " + said;
    };
  }

  private static boolean after(Instant t, Instant than) {
    return t != null && t.isAfter(than);
  }

  private void require(String vm, String what, BooleanSupplier condition) {
    if (await(PHASE_LIMIT, condition) == null) {
      throw new IllegalStateException(vm + " never reached " + what + " within " + PHASE_LIMIT);
    }
  }

  /** Polls {@code condition} until it holds; seconds it took, or null past {@code limit}. */
  static Double await(Duration limit, BooleanSupplier condition) {
    long start = System.nanoTime();
    long deadline = start + limit.toNanos();
    while (true) {
      boolean holds;
      try {
        holds = condition.getAsBoolean();
      } catch (GaveUp e) {
        throw e;
      } catch (RuntimeException unreachableYet) { // a query while no worker runs, an agent down
        holds = false;
      }
      if (holds) {
        return (System.nanoTime() - start) / 1e9;
      }
      if (System.nanoTime() > deadline) {
        return null;
      }
      LockSupport.parkNanos(Duration.ofMillis(100).toNanos());
    }
  }

  private static ProtectionState state(ProtectVmWorkflow wf) {
    return wf.status().state();
  }

  /** A failover that FAILED will not reach anything: the run stops waiting and says why. */
  private static boolean failoverReached(FailoverWorkflow wf, FailoverState wanted) {
    var status = wf.status();
    if (status.state() == FailoverState.FAILED) {
      throw new GaveUp("failover FAILED: " + status.error());
    }
    return status.state() == wanted;
  }

  /** Reprotect reached PROTECTED; FAILED stops the wait with its error. */
  private static boolean reprotected(ReprotectWorkflow wf) {
    var status = wf.status();
    if (status.state() == ReprotectState.FAILED) {
      throw new GaveUp("reprotect FAILED: " + status.error());
    }
    return status.state() == ReprotectState.PROTECTED;
  }

  private static boolean planReached(RecoveryPlanWorkflow wf, PlanState wanted) {
    var status = wf.status();
    if (status.state() == PlanState.FAILED) {
      throw new GaveUp("plan FAILED: " + status.failures());
    }
    return status.state() == wanted;
  }

  private static String planState(RecoveryPlanWorkflow wf) {
    try {
      return "plan " + wf.status().state();
    } catch (RuntimeException e) {
      return "state unknown";
    }
  }

  private static String reprotectState(ReprotectWorkflow wf) {
    try {
      return "reprotect " + wf.status().state();
    } catch (RuntimeException e) {
      return "state unknown";
    }
  }

  /** Thrown by a condition that can no longer hold. */
  static final class GaveUp extends RuntimeException {
    GaveUp(String why) {
      super(why);
    }
  }

  private static FailoverState failoverState(FailoverWorkflow wf) {
    return wf.status().state();
  }

  private static String observed(ProtectVmWorkflow protection, FailoverWorkflow failover) {
    try {
      return failover != null ? "failover " + failover.status().state()
          : protection.status().state().toString();
    } catch (RuntimeException e) {
      return "state unknown";
    }
  }

  private static String describe(ProtectVmWorkflow protection, FailoverWorkflow failover) {
    try {
      ProtectionStatus s = protection.status();
      String text = s.state() + " " + s.health() + " " + s.healthReasons();
      if (failover != null) {
        text += "; failover " + failover.status().state();
      }
      return text;
    } catch (RuntimeException e) {
      return "status unavailable: " + e.getMessage();
    }
  }

  private static WorkflowOptions options(String id, String summary) {
    return WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
        .setWorkflowId(id).setStaticSummary(summary).build();
  }
}
