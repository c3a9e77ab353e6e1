package io.siterecovery.workers.bench;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.siterecovery.activities.AgentActivities;
import io.siterecovery.activities.AgentActivitiesImpl;
import io.siterecovery.activities.AgentActivityRecords.CopyDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.CopyProgress;
import io.siterecovery.activities.AgentActivityRecords.DeltaRequest;
import io.siterecovery.activities.AgentActivityRecords.DiskCopyResult;
import io.siterecovery.activities.AgentActivityRecords.DiskResyncResult;
import io.siterecovery.activities.AgentActivityRecords.ReplicationCycle;
import io.siterecovery.activities.AgentActivityRecords.ResyncDiskRequest;
import io.siterecovery.activities.AgentActivityRecords.TransferSettings;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.activities.SiteDirectory;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.workflows.common.AgentSteps;
import io.temporal.activity.ActivityOptions;
import io.temporal.testing.TestActivityEnvironment;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The copy activity against two real agents in this process, through Temporal's activity test
 * environment: on a link capped at 0.5 MB/s its heartbeats still come every few seconds with the
 * offset copied so far (a resync's too), a retry resumes at the last one, and the replica ends
 * equal to the source (by {@code cmp}, not our own code).
 */
class DiskCopyHeartbeatTest {
  private static final long MIB = 1L << 20;
  private static final long SIZE = 4 * MIB;
  private static final double MBPS = 0.5;
  /** What the server sees: the worker throttles heartbeats to 4 s (WorkerRunner), the SDK's
   * default is 0.8 of the heartbeat timeout, so a 5 s timeout here gives the same 4 s. */
  private static final Duration HEARTBEAT_TIMEOUT = Duration.ofSeconds(5);

  @TempDir Path dir;
  private LocalSites sites;
  private TestActivityEnvironment env;
  private final List<long[]> heartbeats = Collections.synchronizedList(new ArrayList<>());
  private final List<CopyProgress> reports = Collections.synchronizedList(new ArrayList<>());

  @BeforeEach
  void setUp() throws Exception {
    sites = new LocalSites(dir);
    sites.source.createVm("web01", List.of(SIZE));
    DiskFiles.fillRandom(sites.primary.diskImage("web01", "disk0"), SIZE, 11);
    sites.source.enableProtection("web01", "secondary");
  }

  @AfterEach
  void tearDown() throws Exception {
    if (env != null) {
      env.close();
    }
    sites.close();
  }

  private AgentActivities activities(long resumeFrom) {
    env = TestActivityEnvironment.newInstance();
    SiteDirectory directory = new SiteDirectory(Map.of("primary", sites.primary.url(),
        "secondary", sites.secondary.url()), Map.of("primary", "secondary"),
        LocalSites.credentials(Identity.operator()));
    env.registerActivitiesImplementations(new AgentActivitiesImpl(directory,
        (workflowId, p) -> reports.add(p)));
    // A delta's beats carry no details (null): recorded as offset -1.
    env.setActivityHeartbeatListener(Long.class,
        offset -> heartbeats.add(new long[] {System.nanoTime(), offset == null ? -1 : offset}));
    if (resumeFrom > 0) {
      env.setHeartbeatDetails(resumeFrom);
    }
    return env.newActivityStub(AgentActivities.class, ActivityOptions.newBuilder()
        .setStartToCloseTimeout(Duration.ofMinutes(2))
        .setHeartbeatTimeout(HEARTBEAT_TIMEOUT).build());
  }

  private static CopyDiskRequest request() {
    return new CopyDiskRequest(new ProtectionPlan("web01", "primary", "secondary",
        List.of(new ProtectionPlan.DiskInfo("disk0", SIZE))), "disk0", SIZE,
        new TransferSettings(false, MBPS), "protect-web01", null);
  }

  @Test
  void aCappedCopyHeartbeatsEveryFewSecondsAndTheReplicaEqualsTheSource() throws Exception {
    long started = System.nanoTime();
    DiskCopyResult result = activities(0).copyDisk(request());
    long finished = System.nanoTime();

    assertThat(result.bytesRead()).isEqualTo(SIZE);
    // At 0.5 MB/s the 4 MiB take about 8 s, so several agent calls, each heartbeating its offset.
    assertThat(heartbeats.size()).isGreaterThanOrEqualTo(2);
    long previousAt = started;
    long previousOffset = 0;
    double worstGapSeconds = 0;
    long worstGapBytes = 0;
    for (long[] h : heartbeats) {
      assertThat(h[1]).isGreaterThan(previousOffset);
      worstGapSeconds = Math.max(worstGapSeconds, (h[0] - previousAt) / 1e9);
      worstGapBytes = Math.max(worstGapBytes, h[1] - previousOffset);
      previousAt = h[0];
      previousOffset = h[1];
    }
    worstGapSeconds = Math.max(worstGapSeconds, (finished - previousAt) / 1e9);
    System.out.printf("copy of %d MiB at %.1f MB/s: %.1f s, %d heartbeats, worst spacing %.2f s"
        + " and %d bytes%n", SIZE / MIB, MBPS, (finished - started) / 1e9, heartbeats.size(),
        worstGapSeconds, worstGapBytes);
    // The last heartbeat may be held back by the throttle: the completion itself ends the copy.
    // A heartbeat is due every 4 s (the throttle); a call lasts 3 s plus the chunk in flight.
    assertThat(worstGapSeconds).isLessThan(HEARTBEAT_TIMEOUT.toSeconds());
    // What a crash can make a retry send again: the bytes between two recorded heartbeats.
    assertThat(Math.max(worstGapBytes, SIZE - previousOffset))
        .isLessThanOrEqualTo((long) (MBPS * 1e6 * HEARTBEAT_TIMEOUT.toSeconds()));
    assertThat(reports).isNotEmpty();
    assertThat(reports.get(reports.size() - 1).bytesDone()).isEqualTo(SIZE);
    assertIdentical();
  }

  @Test
  void aRetryResumesAtTheLastHeartbeatAndSendsOnlyTheRest() throws Exception {
    // A first attempt got to 3 MiB and its worker died: its last heartbeat said so.
    long resumeAt = 3 * MIB;
    sites.source.copyRange("web01", "disk0", 0, resumeAt);

    DiskCopyResult result = activities(resumeAt).copyDisk(request());

    assertThat(result.resumedFrom()).isEqualTo(resumeAt);
    assertThat(result.bytesRead()).isEqualTo(SIZE - resumeAt);
    assertThat(result.bytesSent()).isEqualTo(SIZE - resumeAt);
    assertThat(heartbeats).isNotEmpty();
    assertThat(heartbeats.get(0)[1]).isGreaterThan(resumeAt);
    assertIdentical();
  }

  @Test
  void aCappedResyncOfAWhollyDamagedReplicaHeartbeatsEveryFewSeconds() throws Exception {
    sites.source.copyRange("web01", "disk0", 0, SIZE);
    sites.source.replicate("web01");
    sites.source.completeInitialReplication("web01");
    // Every block of the replica's first 2 MiB differs: each one must travel at 0.5 MB/s.
    long damagedBlocks = 2 * MIB / (64 << 10);
    DiskFiles.overwriteBlocks(sites.secondary.diskImage("web01", "disk0"),
        java.util.stream.LongStream.range(0, damagedBlocks).boxed().toList(), 64 << 10,
        new java.util.SplittableRandom(3));
    sites.source.beginResync("web01");

    long started = System.nanoTime();
    DiskResyncResult result = activities(0).resyncDisk(new ResyncDiskRequest(request().plan(),
        "disk0", SIZE, new TransferSettings(false, MBPS), "protect-web01"));
    long finished = System.nanoTime();
    sites.source.completeResync("web01");

    assertThat(result.blocksDiffering()).isEqualTo(damagedBlocks);
    long previousAt = started;
    double worstGapSeconds = 0;
    for (long[] h : heartbeats) {
      worstGapSeconds = Math.max(worstGapSeconds, (h[0] - previousAt) / 1e9);
      previousAt = h[0];
    }
    worstGapSeconds = Math.max(worstGapSeconds, (finished - previousAt) / 1e9);
    System.out.printf("resync of %d damaged MiB at %.1f MB/s: %.1f s, %d heartbeats, worst "
        + "spacing %.2f s%n", damagedBlocks / 16, MBPS, (finished - started) / 1e9,
        heartbeats.size(), worstGapSeconds);
    assertThat(heartbeats).isNotEmpty();
    assertThat(worstGapSeconds).isLessThan(HEARTBEAT_TIMEOUT.toSeconds());
    assertIdentical();
  }

  @Test
  void aCappedDeltaHeartbeatsWhileTheAgentShips() throws Exception {
    assumeTrue(ExternalTool.installed("qemu-io"), "qemu-io not installed");
    sites.source.copyRange("web01", "disk0", 0, SIZE);
    sites.source.replicate("web01");
    sites.source.completeInitialReplication("web01");
    sites.source.setPower("web01", VmRecord.Power.RUNNING);
    ExternalTool.run(List.of("qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 3M",
        sites.primary.nbdUri("web01", "disk0")));

    long started = System.nanoTime();
    ReplicationCycle cycle = activities(0).replicateDelta(new DeltaRequest(request().plan(),
        null, false, new TransferSettings(false, MBPS)));
    long finished = System.nanoTime();

    // 3 MiB at 0.5 MB/s ship in one agent call of about 6 s: only the beats keep it alive.
    assertThat(cycle.bytesShipped()).isGreaterThanOrEqualTo(3 * MIB);
    long previousAt = started;
    double worstGapSeconds = 0;
    for (long[] h : heartbeats) {
      worstGapSeconds = Math.max(worstGapSeconds, (h[0] - previousAt) / 1e9);
      previousAt = h[0];
    }
    worstGapSeconds = Math.max(worstGapSeconds, (finished - previousAt) / 1e9);
    System.out.printf("delta of 3 MiB at %.1f MB/s: %.1f s, %d heartbeats, worst spacing %.2f s%n",
        MBPS, (finished - started) / 1e9, heartbeats.size(), worstGapSeconds);
    assertThat(heartbeats.size()).isGreaterThanOrEqualTo(2);
    assertThat(worstGapSeconds).isLessThan(HEARTBEAT_TIMEOUT.toSeconds());
    assertIdentical();
  }

  @Test
  void theDiskCopyStepNoticesALostWorkerWithinFifteenSecondsAndRetriesWithinFive() {
    ActivityOptions o = AgentSteps.diskCopy();
    assertThat(o.getHeartbeatTimeout()).isEqualTo(Duration.ofSeconds(15));
    assertThat(o.getRetryOptions().getInitialInterval()).isEqualTo(Duration.ofSeconds(5));
  }

  private void assertIdentical() throws Exception {
    String out = ExternalTool.run(List.of("cmp", sites.primary.diskImage("web01", "disk0")
        .toString(), sites.secondary.diskImage("web01", "disk0").toString()));
    assertThat(out).isEmpty();
  }
}
