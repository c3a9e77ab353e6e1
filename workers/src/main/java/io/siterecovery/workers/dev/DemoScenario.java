package io.siterecovery.workers.dev;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.Summaries;
import io.siterecovery.workflows.common.OperatorRequest;
import io.siterecovery.workflows.failback.FailbackInput;
import io.siterecovery.workflows.failback.FailbackState;
import io.siterecovery.workflows.failback.FailbackStatus;
import io.siterecovery.workflows.failback.FailbackWorkflow;
import io.siterecovery.workflows.failover.CleanupRequest;
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
import io.siterecovery.workflows.reprotect.ReprotectInput;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReprotectWorkflow;
import io.temporal.client.WorkflowStub;
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
 * replication, protected with live progress; then web01's whole round trip: a test failover held
 * at its point while replication goes on, cleaned up; a planned failover and commit; writes on the
 * new site; Reprotect sending back only those; Failback home. Then the cloud: app01 replicated to
 * the bucket of site cloud and a drill recovered from it. Bytes are verified at every stage.
 */
public final class DemoScenario {
  private static final long MIB = 1 << 20;
  private static final Duration POLL = Duration.ofMillis(500);
  /** The demo's policy replicates every 10 s, so that a newcomer sees cycles without waiting. */
  public static final String POLICY = "demo";
  public static final Duration CYCLE = Duration.ofSeconds(10);

  /** The policy {@link #POLICY}: a cycle every {@link #CYCLE}, RPO threshold 1 min, 1 h kept. */
  public static SiteRecoveryConfig.Policy policy() {
    return new SiteRecoveryConfig.Policy(CYCLE, Duration.ofMinutes(1), Duration.ofHours(1), null,
        null, null, false, null, null);
  }

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

    out.println("== 2. protect both (ProtectVm, policy " + POLICY + ") while a writer keeps writing ==");
    AtomicBoolean writing = new AtomicBoolean(true);
    AtomicLong during = new AtomicLong();
    Thread writer = new Thread(() -> keepWriting(vms, writing, during), "demo-writer");
    writer.start();
    long protectStart = System.nanoTime();
    for (String vm : vms.keySet()) {
      ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class,
          options(ProtectVmWorkflow.workflowId(vm), Summaries.protect(vm, POLICY)));
      WorkflowClient.start(wf::protect, new ProtectVmInput(vm, POLICY));
    }
    Map<String, String> lastLine = new LinkedHashMap<>();
    awaitProtection(vms.keySet(), s -> s.state() == ProtectionState.PROTECTED, lastLine);
    writing.set(false);
    writer.join();
    double protectSeconds = (System.nanoTime() - protectStart) / 1e9;
    out.printf("   both protected in %.1f s; %d writes (%d MiB) landed during initial replication%n",
        protectSeconds, during.get(), during.get() * 64 * 1024 / MIB);

    out.println("== 3. write after protection, then wait for the next delta cycle (every "
        + CYCLE.toSeconds() + " s) ==");
    long after = writeRandom(stack.primary(), "web01", "disk0", 16, 256 * 1024, true);
    out.printf("   wrote %d KiB to web01 with FUA%n", after / 1024);
    ProtectVmWorkflow web = client.newWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId("web01"));
    long cycles = web.status().deltaCycles();
    awaitProtection(List.of("web01"), s -> s.deltaCycles() > cycles, lastLine);
    ProtectionStatus webStatus = web.status();
    boolean verified = true;

    out.println("== 4. test failover of web01 (a drill) while the writer keeps writing ==");
    long testStart = System.nanoTime();
    FailoverWorkflow drill = client.newWorkflowStub(FailoverWorkflow.class, options(
        FailoverWorkflow.testWorkflowId("web01"),
        Summaries.failover(FailoverType.TEST, "web01", "LATEST", "secondary") + " (demo drill)"));
    WorkflowClient.start(drill::failover, new FailoverInput("web01", FailoverType.TEST, "LATEST"));
    FailoverStatus ds = awaitFailover(drill, FailoverState.TESTING, 0);
    double toTesting = (System.nanoTime() - testStart) / 1e9;
    out.printf("   test VM %s up in %.1f s at %s, nothing copied: %s%n", ds.test().testVm(),
        toTesting, ds.recoveryPoint().id(), ds.test().exports());
    String testDigest = digest(stack.secondary(), "web01-test/disk0");
    writing.set(true);
    during.set(0);
    Thread drillWriter = new Thread(() -> keepWriting(Map.of("web01", List.of(512 * MIB)),
        writing, during), "demo-writer");
    drillWriter.start();
    long drillCycles = web.status().deltaCycles();
    awaitProtection(List.of("web01"), s -> s.deltaCycles() > drillCycles, lastLine);
    writing.set(false);
    drillWriter.join();
    boolean held = testDigest.equals(digest(stack.secondary(), "web01-test/disk0"));
    out.printf("   replication went on underneath (%s now, %d writes landed); the test VM still "
        + "shows %s: %s%n", web.status().latestRecoveryPoint().id(), during.get(),
        ds.recoveryPoint().id(), held ? "UNCHANGED" : "CHANGED");
    verified &= held;
    writeRandom(stack.secondary(), "web01-test", "disk0", 4, 64 * 1024, true);
    drill.cleanup(new CleanupRequest("demo drill: the test VM booted and answered"));
    ds = awaitFailover(drill, FailoverState.CLEANED_UP, ds.steps().size());
    boolean clean = stack.operatorClient(stack.secondary()).testClones().isEmpty();
    out.printf("   cleaned up; nothing of web01-test remains on secondary: %s%n", clean);
    verified &= clean;

    out.println("== 5. planned failover of web01 to site secondary ==");
    long foStart = System.nanoTime();
    FailoverWorkflow fo = client.newWorkflowStub(FailoverWorkflow.class,
        options(FailoverWorkflow.workflowId("web01"),
            Summaries.failover(FailoverType.PLANNED, "web01", "LATEST", "secondary")));
    WorkflowClient.start(fo::failover, new FailoverInput("web01", FailoverType.PLANNED, "LATEST"));
    FailoverStatus fs = awaitFailover(fo, FailoverState.AWAITING_COMMIT, 0);
    double failoverSeconds = (System.nanoTime() - foStart) / 1e9;
    verified &= compare("the running replica", stack.primary(), stack.secondary(), "web01");

    out.println("== 6. commit; the VM works on site secondary ==");
    fo.commit(new OperatorRequest("demo"));
    fs = awaitFailover(fo, FailoverState.COMMITTED, fs.steps().size());
    long written = writeRandom(stack.secondary(), "web01", "disk0", 48, 64 * 1024, true);
    out.printf("   wrote %d KiB to web01 on secondary (nbd://127.0.0.1:%d/web01/disk0)%n",
        written / 1024, stack.secondary().nbdPort());

    out.println("== 7. Reprotect: replicate web01 back to primary, reusing its disks there ==");
    ReprotectWorkflow reprotect = client.newWorkflowStub(ReprotectWorkflow.class,
        options(ReprotectWorkflow.workflowId("web01"), Summaries.reprotect("web01", POLICY)));
    long rpStart = System.nanoTime();
    ReprotectStatus rs = reprotect.reprotect(new ReprotectInput("web01", false, POLICY));
    rs.steps().forEach(step -> out.println("   " + step));
    out.printf("   %s in %.1f s: %d KiB sent for %d KiB written (%.2fx)%n", rs.mode(),
        (System.nanoTime() - rpStart) / 1e9, rs.bytesSent() / 1024, written / 1024,
        (double) rs.bytesSent() / written);
    verified &= compare("the replica on primary", stack.secondary(), stack.primary(), "web01");

    out.println("== 8. Failback: planned failover home to primary, then reverse replication ==");
    FailbackWorkflow failback = client.newWorkflowStub(FailbackWorkflow.class,
        options(FailbackWorkflow.workflowId("web01"), Summaries.failback("web01", true)));
    WorkflowClient.start(failback::failback, new FailbackInput("web01", true, POLICY));
    awaitFailbackStarted(failback);
    FailoverWorkflow home = client.newWorkflowStub(FailoverWorkflow.class,
        FailoverWorkflow.workflowId("web01"));
    awaitFailover(home, FailoverState.AWAITING_COMMIT, 0);
    verified &= compare("web01 back home", stack.secondary(), stack.primary(), "web01");
    failback.commit(new OperatorRequest("demo"));
    FailbackStatus fb = WorkflowStub.fromTyped(failback).getResult(FailbackStatus.class);
    fb.steps().forEach(step -> out.println("   " + step));
    ProtectVmWorkflow again = client.newWorkflowStub(ProtectVmWorkflow.class,
        ProtectVmWorkflow.workflowId("web01"));
    awaitProtection(List.of("web01"), st -> st.state() == ProtectionState.PROTECTED
        && "primary".equals(st.sourceSite()), lastLine);
    verified &= compare("the replica on secondary", stack.primary(), stack.secondary(), "web01");

    CloudDrill cloud = cloudDrill(primary);
    verified &= cloud.verified();

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
    out.printf("   web01  RPO before the drill %s s, %d delta cycles, %d KiB shipped in logs%n",
        webStatus.rpoSeconds(), webStatus.deltaCycles(), webStatus.bytesShipped() / 1024);
    out.printf("   db01   %s, RPO %s s, latest point %s%n", db.state(), db.rpoSeconds(),
        db.latestRecoveryPoint() == null ? "-" : db.latestRecoveryPoint().id());
    out.printf("   web01  test VM up in %.1f s; planned failover to AWAITING_COMMIT in %.1f s at "
        + "%s; Reprotect sent %.2fx the bytes written; failback %s, home on %s%n", toTesting,
        failoverSeconds, fs.recoveryPoint().id(), (double) rs.bytesSent() / written, fb.state(),
        again.status().sourceSite());
    out.printf("   app01  protected to the bucket in %.1f s (%d MiB stored, sealed); test VM "
        + "from the bucket up in %.1f s; first 4 KiB read %.0f ms after%n", cloud.protectSeconds(),
        cloud.storedBytes() / MIB, cloud.toTesting(), cloud.firstReadMillis());
    out.printf("   verification: %s; demo took %.0f s%n", verified ? "PASSED" : "FAILED",
        (System.nanoTime() - t0) / 1e9);
    return verified;
  }

  private record CloudDrill(boolean verified, double protectSeconds, long storedBytes,
      double toTesting, double firstReadMillis) {}

  /**
   * The cloud target: app01 replicates to the bucket of site cloud (s3proxy in process, objects
   * sealed by the agent), then a drill recovers it from there on the cloud's recovery host while
   * the background fetch is still running.
   */
  private CloudDrill cloudDrill(AgentClient primary) throws Exception {
    out.println("== 9. the cloud: protect app01 to the object-store site cloud, then a drill "
        + "from the bucket ==");
    String vm = "app01";
    primary.createVm(vm, List.of(256 * MIB));
    byte[] canary = "demo canary: plaintext that must never reach the bucket".getBytes(
        java.nio.charset.StandardCharsets.US_ASCII);
    long written = 0;
    try (NbdClient nbd = new NbdClient("127.0.0.1", stack.primary().nbdPort(), vm + "/disk0")) {
      byte[] data = new byte[(int) MIB];
      for (long at = 0; at < 24 * MIB; at += MIB) {
        random.nextBytes(data);
        nbd.write(at, data, false);
        written += MIB;
      }
      nbd.write(200 * MIB, canary, true);
      nbd.flush();
    }
    long start = System.nanoTime();
    ProtectVmWorkflow wf = client.newWorkflowStub(ProtectVmWorkflow.class,
        options(ProtectVmWorkflow.workflowId(vm), Summaries.protect(vm, POLICY, "primary",
            CloudBucket.SITE)));
    WorkflowClient.start(wf::protect, new ProtectVmInput(vm, POLICY, CloudBucket.SITE, null));
    Map<String, String> lastLine = new LinkedHashMap<>();
    awaitProtection(List.of(vm), st -> st.state() == ProtectionState.PROTECTED, lastLine);
    double protectSeconds = (System.nanoTime() - start) / 1e9;
    written += writeRandom(stack.primary(), vm, "disk0", 16, 64 * 1024, true);
    long cycles = wf.status().deltaCycles();
    awaitProtection(List.of(vm), st -> st.deltaCycles() > cycles, lastLine);
    long stored = 0;
    boolean canaryAtRest = false;
    try (var files = java.nio.file.Files.walk(stack.bucket().storeDir())) {
      for (java.nio.file.Path f : files.filter(java.nio.file.Files::isRegularFile).toList()) {
        byte[] bytes = java.nio.file.Files.readAllBytes(f);
        stored += bytes.length;
        canaryAtRest |= indexOf(bytes, canary) >= 0;
      }
    }
    out.printf("   the bucket holds %d MiB for the %d MiB written in 4 MiB chunks (zero chunks are "
        + "not stored) and logs; a canary written in the VM is in none of its files: %s%n",
        stored / MIB, written / MIB, !canaryAtRest);

    long testStart = System.nanoTime();
    FailoverWorkflow drill = client.newWorkflowStub(FailoverWorkflow.class, options(
        FailoverWorkflow.testWorkflowId(vm),
        Summaries.failover(FailoverType.TEST, vm, "LATEST", CloudBucket.SITE) + " (demo drill)"));
    WorkflowClient.start(drill::failover, new FailoverInput(vm, FailoverType.TEST, "LATEST"));
    FailoverStatus ds = awaitFailover(drill, FailoverState.TESTING, 0);
    double toTesting = (System.nanoTime() - testStart) / 1e9;
    long readStart = System.nanoTime();
    byte[] read;
    try (NbdClient nbd = new NbdClient("127.0.0.1", stack.cloud().nbdPort(),
        vm + "-test/disk0")) {
      read = nbd.read(200 * MIB, canary.length);
    }
    double firstRead = (System.nanoTime() - readStart) / 1e6;
    long diff;
    try (NbdClient nbd = new NbdClient("127.0.0.1", stack.cloud().nbdPort(),
        vm + "-test/disk0")) {
      diff = DiskCompare.firstDifference(nbd, stack.primary().diskImage(vm, "disk0"));
    }
    out.printf("   test VM %s on cloud at %s, exported at once, the rest fetched in the "
        + "background: "
        + "canary read back %s; %s/disk0 %s%n", ds.test().testVm(), ds.recoveryPoint().id(),
        java.util.Arrays.equals(read, canary) ? "intact" : "WRONG", vm, diff < 0
            ? "IDENTICAL to the source (256 MiB compared)" : "DIFFERS at byte " + diff);
    drill.cleanup(new CleanupRequest("demo drill from the bucket"));
    awaitFailover(drill, FailoverState.CLEANED_UP, ds.steps().size());
    boolean clean = stack.operatorClient(stack.cloud()).bucketRecoveries().isEmpty();
    out.printf("   cleaned up; nothing of %s-test remains on cloud: %s%n", vm, clean);
    return new CloudDrill(!canaryAtRest && java.util.Arrays.equals(read, canary) && diff < 0
        && clean, protectSeconds, stored, toTesting, firstRead);
  }

  private static int indexOf(byte[] haystack, byte[] needle) {
    outer:
    for (int i = 0; i + needle.length <= haystack.length; i++) {
      for (int j = 0; j < needle.length; j++) {
        if (haystack[i + j] != needle[j]) {
          continue outer;
        }
      }
      return i;
    }
    return -1;
  }

  private static WorkflowOptions options(String id, String summary) {
    return WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE).setWorkflowId(id)
        .setStaticSummary(summary).build();
  }

  /** The VM's disks on {@code active}, as its NBD exports serve them, against its copy's images. */
  private boolean compare(String what, HostAgent active, HostAgent copy, String vm)
      throws IOException {
    boolean same = true;
    for (VmRecord.DiskSpec d : stack.operatorClient(active).getVm(vm).disks()) {
      long diff;
      try (NbdClient nbd = new NbdClient("127.0.0.1", active.nbdPort(), vm + "/" + d.name())) {
        diff = DiskCompare.firstDifference(nbd, copy.diskImage(vm, d.name()));
      } catch (IOException notServed) {
        diff = DiskCompare.firstDifference(active.diskImage(vm, d.name()),
            copy.diskImage(vm, d.name()));
      }
      out.printf("   verify %s, %s/%s: %s%n", what, vm, d.name(), diff < 0 ? "IDENTICAL ("
          + d.sizeBytes() / MIB + " MiB compared)" : "DIFFERS at byte " + diff);
      same &= diff < 0;
    }
    return same;
  }

  private static String digest(HostAgent agent, String export) throws IOException {
    try (NbdClient nbd = new NbdClient("127.0.0.1", agent.nbdPort(), export)) {
      java.security.MessageDigest sha = java.security.MessageDigest.getInstance("SHA-256");
      for (long at = 0; at < nbd.size(); at += 4 * MIB) {
        sha.update(nbd.read(at, (int) Math.min(4 * MIB, nbd.size() - at)));
      }
      return java.util.HexFormat.of().formatHex(sha.digest());
    } catch (java.security.NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /** Until the failback has started its failover home: failover-web01 then names the new run. */
  private static void awaitFailbackStarted(FailbackWorkflow failback) {
    while (failback.status().state() == FailbackState.VALIDATING
        || failback.status().steps().size() < 2) {
      LockSupport.parkNanos(POLL.toNanos());
    }
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
