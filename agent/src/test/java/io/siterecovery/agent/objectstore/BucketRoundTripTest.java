package io.siterecovery.agent.objectstore;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.BucketMessages.BucketCycleResult;
import io.siterecovery.agent.api.BucketMessages.BucketInitialProgress;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoverFromBucketRequest;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryInfo;
import io.siterecovery.agent.objectstore.ship.BucketShipper;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.agent.testing.TestCerts;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Both halves through their routes, each agent configured with the same object-store site the
 * way an operator configures it (--object-store cloud=FILE): the source agent ships a VM to the
 * bucket, a recovery host on another site brings it back at a point with its disks exported at
 * once, and the recovered disk equals the source as it was at that point (qemu-img compare over
 * NBD), not as it is after.
 */
class BucketRoundTripTest {
  private static final long MIB = 1L << 20;

  @TempDir
  Path dir;

  @Test
  void aVmShippedToTheBucketIsRecoveredOnAnotherSiteAtItsPoint() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    try (S3ProxyServer s3proxy = S3ProxyServer.start(Files.createDirectories(dir.resolve("s3")))) {
      Path site = siteFile(s3proxy);
      try (HostAgent primary = agent("primary", site); HostAgent host = agent("secondary", site)) {
        AgentClient source = TestCerts.operatorClient(primary);
        source.createVm("web01", List.of(8 * MIB));
        String nbd = primary.nbdUri("web01", "disk0");
        qemuIo(nbd, "write -P 0x11 0 3M", "write -P 0x22 6M 1M").assertOk();
        BucketInitialProgress step;
        do {
          step = source.bucketInitial("web01", "cloud", Duration.ofSeconds(3), null);
        } while (!step.finished());
        qemuIo(nbd, "write -P 0x33 1M 512k").assertOk();
        BucketCycleResult cycle = source.bucketCycle("web01", "cloud", null);
        Path atPoint = Files.copy(primary.diskImage("web01", "disk0"), dir.resolve("at-point.raw"),
            StandardCopyOption.REPLACE_EXISTING);
        // Written after the point: the recovery must not have it.
        qemuIo(nbd, "write -P 0x44 2M 512k").assertOk();

        AgentClient recovery = TestCerts.operatorClient(host);
        RecoveryInfo recovered = recovery.recoverFromBucket("web01", new RecoverFromBucketRequest(
            "cloud", BucketShipper.bucketVmId("web01"), cycle.pointId(), false));
        assertThat(recovered.exports()).hasSize(1);
        String export = recovered.exports().get(0);
        // At once, before the background fetch is through: a block written in the last cycle.
        qemuIo(export, "read -P 0x33 1M 512k").assertOk();
        compareRaw(atPoint.toString(), export).assertOk();
        assertThat(compareRaw(primary.diskImage("web01", "disk0").toString(), export).exitCode())
            .as("the source after the point differs").isNotZero();
      }
    }
  }

  private Path siteFile(S3ProxyServer s3proxy) throws Exception {
    return s3proxy.siteFile(dir.resolve("config"), 0x5a, null);
  }

  private HostAgent agent(String site, Path siteFile) throws Exception {
    return new HostAgent(new HostAgent.Settings(site, dir.resolve(site), "127.0.0.1", 0, 0,
        TestCerts.site(site), Map.of(), HostAgent.Settings.LOOPBACK, false, null, null,
        Map.of("cloud", ObjectStoreSite.load("cloud", siteFile))));
  }
}
