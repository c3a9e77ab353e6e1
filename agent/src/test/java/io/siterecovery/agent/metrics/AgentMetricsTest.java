package io.siterecovery.agent.metrics;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentMessages.ResyncStepRequest;
import io.siterecovery.agent.resync.ResyncLedger;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.Curl;
import io.siterecovery.agent.testing.TestCerts;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's {@code GET /metrics} as Prometheus would see it, scraped by curl (a client we did
 * not write) with the monitor's certificate, after real replication between two agents fed by
 * qemu-io through NBD; and who may not read it.
 */
class AgentMetricsTest {
  private static final long MIB = 1L << 20;
  private static final String VM = "web01";

  @TempDir Path tmp;
  private AgentPair agents;

  @BeforeEach
  void start() throws IOException {
    TestCerts.credentials(Identity.monitor()); // issues monitor.pem for curl
    agents = AgentPair.start(tmp.resolve("agents"));
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  @Test
  void theMonitorScrapesRpoBytesCyclesAndNbdRequestsOfARealReplication() throws Exception {
    assumeInstalled("curl", "qemu-io");
    long size = 8 * MIB;
    agents.createProtected(VM, size);
    String disk0 = agents.primary.nbdUri(VM, "disk0");
    qemuIo(disk0, "write -P 0x5a 0 1M", "write -z 2M 64k", "flush").assertOk();
    agents.initialCopy(VM, "disk0", size, 4 * MIB, null);
    agents.p.replicate(VM);
    assertThat(Exposition.parse(scrape("monitor", agents.secondary).body())
        .find("siterecovery_replica_rpo_seconds")).as("no point to fail over to yet").isEmpty();
    agents.p.completeInitialReplication(VM);
    qemuIo(disk0, "write -P 0x6b 3M 512k", "discard 6M 64k").assertOk();
    agents.p.replicate(VM);

    Curl.Result primaryScrape = scrape("monitor", agents.primary);
    assertThat(primaryScrape.status()).as("%s", primaryScrape).isEqualTo(200);
    assertThat(primaryScrape.headers()).containsIgnoringCase(
        "content-type: text/plain; version=0.0.4");
    Exposition p = Exposition.parse(primaryScrape.body());
    print("primary", primaryScrape.body());

    String[] vm = {"site", "primary", "vm", VM};
    // the source: what it tracked (1 MiB + 64 KiB zeroed + 512 KiB + 64 KiB trimmed), shipped
    assertThat(p.value("siterecovery_tracked_bytes_total", "vm", VM, "disk", "disk0"))
        .isEqualTo(MIB + 64 * 1024 + 512 * 1024 + 64 * 1024);
    assertThat(p.value("siterecovery_shipped_bytes_total", concat(vm, "kind", "log"))).isPositive();
    assertThat(p.value("siterecovery_shipped_bytes_total", concat(vm, "kind", "ranges")))
        .isPositive();
    // all shipped and applied: only the new active logs' headers are left
    assertThat(p.value("siterecovery_unshipped_log_bytes", vm)).isBetween(1.0, 4096.0);
    assertThat(p.value("siterecovery_resync_required", vm)).isZero();
    assertThat(p.value("siterecovery_cycle_seconds_count", concat(vm, "outcome", "ok")))
        .isEqualTo(2);
    // the NBD front-end, by request type: qemu-io's writes, zeroes, trims and flushes
    assertThat(p.value("siterecovery_nbd_requests_seconds_count", "op", "write", "outcome", "ok"))
        .isGreaterThanOrEqualTo(2);
    assertThat(p.value("siterecovery_nbd_bytes_total", "op", "write"))
        .isEqualTo(MIB + 512 * 1024);
    assertThat(p.value("siterecovery_nbd_requests_seconds_count", "op", "write_zeroes",
        "outcome", "ok")).isPositive();
    assertThat(p.value("siterecovery_nbd_requests_seconds_count", "op", "flush", "outcome", "ok"))
        .isPositive();
    assertThat(p.find("siterecovery_nbd_requests_seconds_bucket", "op", "write")).isNotEmpty();
    assertThat(p.names()).contains("jvm_memory_used_bytes", "process_cpu_usage");
    // a primary has no RPO of its own: that is measured where the replica is
    assertThat(p.find("siterecovery_replica_rpo_seconds")).isEmpty();

    String secondaryScrape = scrape("monitor", agents.secondary).body();
    print("secondary", secondaryScrape);
    Exposition s = Exposition.parse(secondaryScrape);
    String[] replica = {"site", "secondary", "vm", VM};
    double rpo = s.value("siterecovery_replica_rpo_seconds", replica);
    assertThat(rpo).as("the age of the point just applied").isBetween(0.0, 60.0);
    assertThat(s.value("siterecovery_applied_bytes_total", concat(replica, "kind", "log")))
        .as("the changes of the applied logs").isPositive();
    assertThat(s.value("siterecovery_applied_bytes_total", concat(replica, "kind", "ranges")))
        .isPositive();
    assertThat(s.value("siterecovery_apply_seconds_count", replica)).isEqualTo(2);
    assertThat(s.find("siterecovery_tracked_bytes_total")).isEmpty();

    // computed at scrape time: with no cycle since, the same point is older at the next scrape
    Thread.sleep(1100);
    double later = Exposition.parse(scrape("monitor", agents.secondary).body())
        .value("siterecovery_replica_rpo_seconds", replica);
    assertThat(later).isGreaterThanOrEqualTo(rpo + 1.0);

    // a VM that is gone leaves no series behind: protection disabled deletes the replica
    agents.p.disableProtection(VM);
    Exposition gone = Exposition.parse(scrape("operator", agents.secondary).body());
    assertThat(gone.samples()).noneMatch(x -> VM.equals(x.labels().get("vm")));
    Exposition unprotected = Exposition.parse(scrape("operator", agents.primary).body());
    assertThat(unprotected.find("siterecovery_tracked_bytes_total")).isEmpty();
    assertThat(unprotected.find("siterecovery_unshipped_log_bytes")).isEmpty();
  }

  @Test
  void onlyTheOperatorAndTheMonitorReadMetricsAndTheMonitorReadsNothingElse() {
    assumeInstalled("curl");
    agents.createProtected(VM, 4 * MIB);
    assertThat(scrape("operator", agents.primary).status()).isEqualTo(200);
    assertThat(scrape("monitor", agents.primary).status()).isEqualTo(200);

    // a peer site: its own VMs' replicas are here, but not the right to read this host's state
    Curl.Result peer = scrape("site-primary", agents.secondary);
    assertThat(peer.status()).as("%s", peer).isEqualTo(403);
    assertThat(peer.body()).contains("FORBIDDEN").doesNotContain("siterecovery_");

    // no certificate: refused at the TLS handshake, no HTTP answer at all
    Curl.Result anonymous = Curl.run(List.of(agents.primary.url() + "/metrics"));
    assertThat(anonymous.answered()).as("%s", anonymous).isFalse();

    // the monitor on the operator's and the sites' routes
    for (List<String> call : List.of(List.of("/v1/vms"), List.of("/v1/vms/" + VM),
        List.of("/v1/vms/" + VM + "/replication"), List.of("/v1/storage"), List.of("/v1/scripts"),
        List.of("/v1/vms/" + VM + "/replicate", "-X", "POST"),
        List.of("/v1/replicas", "-X", "POST", "-H", "Content-Type: application/json",
            "--data", "{\"vm\":\"x\",\"sourceSite\":\"primary\",\"disks\":[]}"))) {
      List<String> args = new ArrayList<>(Curl.as(TestCerts.dir(), "monitor"));
      args.addAll(call.subList(1, call.size()));
      args.add(agents.primary.url() + call.get(0));
      Curl.Result r = Curl.run(args);
      assertThat(r.status()).as("monitor on %s: %s", call, r).isEqualTo(403);
    }
    List<String> feed = new ArrayList<>(Curl.as(TestCerts.dir(), "monitor"));
    feed.add(agents.secondary.url() + "/v1/replicas/" + VM + "/fence-check");
    assertThat(Curl.run(feed).status()).as("monitor asking a partner's question").isEqualTo(403);
  }

  @Test
  void resyncProgressAndTheNeedForOneAreReadFromTheSourcesLedger() {
    assumeInstalled("curl");
    long size = 4 * MIB;
    agents.createProtected(VM, size);
    agents.initialCopy(VM, "disk0", size, size, null);
    agents.p.replicate(VM);
    agents.p.completeInitialReplication(VM);
    String[] disk = {"site", "primary", "vm", VM, "disk", "disk0"};
    Exposition before = Exposition.parse(scrape("monitor", agents.primary).body());
    assertThat(before.find("siterecovery_resync_done_bytes")).as("no resync under way").isEmpty();

    agents.p.beginResync(VM);
    agents.p.resyncStep(VM, "disk0", new ResyncStepRequest(0, 4, 0, null, null)); // 4 x 64 KiB
    Exposition during = Exposition.parse(scrape("monitor", agents.primary).body());
    assertThat(during.value("siterecovery_resync_done_bytes", disk)).isEqualTo(256 * 1024);
    assertThat(during.value("siterecovery_resync_total_bytes", disk)).isEqualTo(size);

    agents.p.resyncStep(VM, "disk0", new ResyncStepRequest(4, 1 << 20, 0, null, null));
    agents.p.completeResync(VM);
    Exposition after = Exposition.parse(scrape("monitor", agents.primary).body());
    assertThat(after.find("siterecovery_resync_done_bytes")).isEmpty();
    assertThat(after.value("siterecovery_resync_required", "vm", VM)).isZero();

    // the agent's CRITICAL: a cycle found a log missing, say
    ResyncLedger.markRequired(agents.primary.vms().get(VM), "LOG_CORRUPT: a test");
    assertThat(Exposition.parse(scrape("monitor", agents.primary).body())
        .value("siterecovery_resync_required", "vm", VM)).isEqualTo(1);
  }

  /** A sample for the test's log: the agent's own series, without histogram buckets. */
  private static void print(String site, String scrape) {
    System.out.println("--- " + site + "'s /metrics (siterecovery_*, no buckets) ---");
    scrape.lines().filter(l -> l.startsWith("siterecovery_") && !l.contains("_bucket"))
        .forEach(System.out::println);
  }

  private static Curl.Result scrape(String stem, HostAgent agent) {
    List<String> args = new ArrayList<>(Curl.as(TestCerts.dir(), stem));
    args.add(agent.url() + "/metrics");
    return Curl.run(args);
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
