package io.siterecovery.workers.chaos;

import io.siterecovery.agent.AgentMain;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.security.CertificateAuthority;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workers.cli.SiteRecoveryCli;
import io.siterecovery.workers.dev.FreePorts;
import io.siterecovery.workers.dev.WorkerRunner;
import io.temporal.client.WorkflowClient;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.testserver.TestServer;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Map;
import java.util.concurrent.locks.LockSupport;

/**
 * The stack a chaos run breaks: Temporal's test server bound to a port in this process (so it
 * outlives a worker), the worker and the two agents as child JVMs that can be killed with
 * SIGKILL and started again on the same ports, and a {@link LinkProxy} as the link from the
 * source agent to the target. The replica agent reaches the source directly: the replication
 * stream (ranges, logs, checksums) flows source to target, which is what a cut link breaks.
 */
final class ChaosHarness implements Closeable {
  static final String POLICY = "chaos";
  /** The children log to stderr, kept in DIR/NAME.log; not also to the CLI's shared file. */
  private static final Map<String, String> QUIET_FILE_LOG =
      Map.of("SITE_RECOVERY_LOG_FILE", "/dev/null");

  /** How often a cycle runs: short, so a run sees several of them in seconds. */
  final Duration copyFrequency;
  private final Path dir;
  private final Path certs;
  private final TestServer.PortBoundTestServer temporal;
  private final int temporalPort;
  private final WorkflowServiceStubs service;
  private final WorkflowClient client;
  private final int primaryHttp = FreePorts.next();
  private final int primaryNbd = FreePorts.next();
  private final int secondaryHttp = FreePorts.next();
  private final int secondaryNbd = FreePorts.next();
  private final Path secondaryData;
  private final Path primaryData;
  final LinkProxy link;
  private final Path config;
  private ChildJvm primary;
  private ChildJvm secondary;
  private ChildJvm worker;

  /**
   * {@code secondaryData}: where the replica agent keeps its data (a small tmpfs for the
   * disk-full scenario), or null for a folder under {@code dir}.
   */
  ChaosHarness(Path dir, Duration copyFrequency, Double bandwidthMBps, Path secondaryData)
      throws IOException {
    this(dir, copyFrequency, bandwidthMBps, null, secondaryData);
  }

  /**
   * {@code primaryData}: where the source agent keeps its data (a small tmpfs for the
   * source-disk-full scenario), or null for a folder under {@code dir}.
   */
  ChaosHarness(Path dir, Duration copyFrequency, Double bandwidthMBps, Path primaryData,
      Path secondaryData) throws IOException {
    this.dir = Files.createDirectories(dir);
    this.copyFrequency = copyFrequency;
    this.certs = dir.resolve("certs");
    this.secondaryData = secondaryData != null ? secondaryData : dir.resolve("secondary");
    this.primaryData = primaryData != null ? primaryData : dir.resolve("primary");
    CertificateAuthority.provision(certs, "chaos", List.of(Identity.site("primary"),
        Identity.site("secondary"), Identity.operator(), Identity.worker()));
    this.temporalPort = FreePorts.next();
    // lockTimeSkipping=true: real time, as dev runs it.
    this.temporal = TestServer.createPortBoundServer(temporalPort, true);
    this.service = WorkerRunner.connect("127.0.0.1:" + temporalPort);
    this.client = WorkerRunner.client(service, "default");
    this.link = new LinkProxy(secondaryHttp);
    this.config = dir.resolve("worker.json");
    // "default" too: a test failover takes its maxTestDuration from the default policy.
    Files.writeString(config, """
        {"temporal": "127.0.0.1:%d", "namespace": "default",
         "sites": {"primary": "https://127.0.0.1:%d", "secondary": "https://127.0.0.1:%d"},
         "partners": {"primary": "secondary", "secondary": "primary"},
         "certs": "%s",
         "policies": {"default": {}, "%s": {"copyFrequency": "%s", "rpoThreshold": "PT1M", "retention": "PT2M",
           "resyncWindow": {"start": "00:00", "end": "23:59", "timeZone": "UTC"}%s}},
         "plans": {%s}}
        """.formatted(temporalPort, primaryHttp, secondaryHttp, certs.toAbsolutePath(), POLICY,
        copyFrequency, bandwidthMBps == null ? "" : ", \"bandwidthMBps\": " + bandwidthMBps,
        plans()));
    try {
      startPrimary();
      startSecondary();
      startWorker();
    } catch (IOException | RuntimeException e) {
      close();
      throw e;
    }
  }

  /** Run n's plan: its VM and a second one, in one group (the config is read at start). */
  static String planOf(int run) {
    return "chaos-" + run;
  }

  static String secondVmOf(String vm) {
    return vm + "b";
  }

  private static String plans() {
    StringBuilder b = new StringBuilder();
    for (int n = 1; n <= PLANNED_RUNS; n++) {
      b.append(n == 1 ? "" : ", ").append('"').append(planOf(n))
          .append("\": {\"groups\": [{\"name\": \"all\", \"vms\": [\"c").append(n)
          .append("\", \"").append(secondVmOf("c" + n)).append("\"]}]}");
    }
    return b.toString();
  }

  /** Runs numbered up to this have a plan in the worker's config. */
  static final int PLANNED_RUNS = 64;

  Path secondaryData() {
    return secondaryData;
  }

  Path primaryData() {
    return primaryData;
  }

  WorkflowClient client() {
    return client;
  }

  int primaryNbd() {
    return primaryNbd;
  }

  AgentClient primaryAgent() {
    return operator(primaryHttp, "primary");
  }

  AgentClient secondaryAgent() {
    return operator(secondaryHttp, "secondary");
  }

  Path sourceImage(String vm, String disk) {
    return primaryData.resolve("vms").resolve(vm).resolve(disk + ".img");
  }

  Path replicaImage(String vm, String disk) {
    return secondaryData.resolve("vms").resolve(vm).resolve(disk + ".img");
  }

  /** The seal time of the replica's latest applied point, or null (none yet, agent down). */
  Instant replicaPointTime(String vm) {
    try {
      VmRecord r = secondaryAgent().getVm(vm);
      return r.replica() == null ? null : r.replica().pointTime();
    } catch (RuntimeException unreachable) {
      return null;
    }
  }

  /** After a failover and Reprotect: the seal time of the old source's (primary's) point. */
  Instant reverseReplicaPointTime(String vm) {
    try {
      VmRecord r = primaryAgent().getVm(vm);
      return r.replica() == null ? null : r.replica().pointTime();
    } catch (RuntimeException unreachable) {
      return null;
    }
  }

  // --- the processes, each started on its fixed ports so that a restart is the same service

  void startPrimary() throws IOException {
    primary = agent("primary", primaryHttp, primaryNbd,
        "secondary=https://127.0.0.1:" + link.port());
  }

  void startSecondary() throws IOException {
    secondary = agent("secondary", secondaryHttp, secondaryNbd,
        "primary=https://127.0.0.1:" + primaryHttp);
  }

  void startWorker() throws IOException {
    Path log = dir.resolve("worker.log");
    long from = Files.exists(log) ? Files.size(log) : 0;
    worker = ChildJvm.start("worker", SiteRecoveryCli.class, List.of("-Xmx256m",
            "-D" + WorkerRunner.STICKY_PROPERTY + "=PT0S"), // see there: a test server's limit
        List.of("worker", "--config", config.toString(), "--http-port", "0"), log,
        QUIET_FILE_LOG, null);
    // Ready when it polls; the server would queue tasks meanwhile, but the worker registers the
    // search attributes our workflows upsert, so the first start must wait for it.
    long deadline = System.nanoTime() + Duration.ofSeconds(90).toNanos();
    while (!logSince(log, from).contains("worker polling task queue")) {
      if (!worker.alive() || System.nanoTime() > deadline) {
        throw new IOException("worker did not start polling; see " + log);
      }
      LockSupport.parkNanos(Duration.ofMillis(100).toNanos());
    }
  }

  void killWorker() throws InterruptedException {
    worker.kill();
  }

  void killPrimary() throws InterruptedException {
    primary.kill();
  }

  void killSecondary() throws InterruptedException {
    secondary.kill();
  }

  private ChildJvm agent(String site, int http, int nbd, String peer) throws IOException {
    Path data = site.equals("secondary") ? secondaryData : primaryData;
    return ChildJvm.start(site, AgentMain.class, List.of("-Xmx384m"),
        List.of("--site", site, "--data", data.toString(), "--http", String.valueOf(http),
            "--nbd", String.valueOf(nbd), "--certs", certs.toString(), "--peer", peer),
        dir.resolve(site + ".log"), QUIET_FILE_LOG, line -> line.startsWith("READY "));
  }

  private AgentClient operator(int port, String site) {
    try {
      return new AgentClient("https://127.0.0.1:" + port,
          TlsCredentials.load(certs, Identity.operator()), Identity.site(site));
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  private static String logSince(Path log, long from) throws IOException {
    if (!Files.exists(log)) {
      return "";
    }
    byte[] all = Files.readAllBytes(log);
    return new String(all, (int) Math.min(from, all.length), (int) Math.max(0, all.length - from),
        java.nio.charset.StandardCharsets.UTF_8);
  }


  @Override
  public void close() throws IOException {
    try {
      for (ChildJvm c : new ChildJvm[] {worker, primary, secondary}) {
        if (c != null && c.alive()) {
          c.stop();
        }
      }
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    } finally {
      link.close();
      service.shutdownNow();
      temporal.close();
    }
  }
}
