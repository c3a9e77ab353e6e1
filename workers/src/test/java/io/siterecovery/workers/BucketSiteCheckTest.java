package io.siterecovery.workers;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.activities.AgentActivitiesImpl;
import io.siterecovery.activities.ProtectionPlan;
import io.siterecovery.activities.SiteDirectory;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workers.dev.CloudBucket;
import io.siterecovery.workers.dev.DevStack;
import io.temporal.failure.ApplicationFailure;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The worker protects a VM to an object-store site only when the source agent ships to the
 * bucket the worker's configuration names: another bucket or another key is refused, naming the
 * difference, before anything is copied.
 */
class BucketSiteCheckTest {
  @TempDir
  Path data;

  @Test
  void aSourceAgentShippingToAnotherBucketOrKeyIsRefusedNamingTheDifference() throws Exception {
    try (DevStack stack = new DevStack(data, new DevStack.Ports(0, 0, 0, 0, 0))) {
      SiteRecoveryConfig config = stack.config();
      SiteDirectory.ObjectStore right = config.objectStoreDirectory().get(CloudBucket.SITE);
      stack.operatorClient(stack.primary()).createVm("chk01", List.of(4L << 20));

      AgentActivitiesImpl otherBucket = activities(config, new SiteDirectory.ObjectStore(
          right.endpoint(), "another-bucket", right.prefix(), right.keyId()));
      ProtectionPlan plan = otherBucket.planProtectionTo("chk01", CloudBucket.SITE);
      assertThatThrownBy(() -> otherBucket.enableReplication(plan))
          .isInstanceOfSatisfying(ApplicationFailure.class, f -> {
            assertThat(f.isNonRetryable()).isTrue();
            assertThat(f.getOriginalMessage()).contains("another bucket than this worker's "
                + "configuration names").contains("bucket " + CloudBucket.BUCKET
                + ", configured another-bucket");
          });
      AgentActivitiesImpl otherKey = activities(config, new SiteDirectory.ObjectStore(
          right.endpoint(), right.bucket(), right.prefix(), "0000000000000000"));
      assertThatThrownBy(() -> otherKey.enableReplication(plan))
          .hasMessageContaining("key " + right.keyId() + ", configured 0000000000000000");
      assertThat(stack.operatorClient(stack.primary()).getVm("chk01").protection())
          .as("nothing enabled").isNull();

      assertThat(activities(config, right).enableReplication(plan))
          .as("the right bucket: protection starts, the copy is not done yet").isFalse();
      assertThat(stack.operatorClient(stack.primary()).getVm("chk01").protection().targetSite())
          .isEqualTo(CloudBucket.SITE);
    }
  }

  private static AgentActivitiesImpl activities(SiteRecoveryConfig config,
      SiteDirectory.ObjectStore cloud) {
    return new AgentActivitiesImpl(new SiteDirectory(config.sites(), config.partners(),
        Map.of(CloudBucket.SITE, cloud), config.operatorCredentials()), (id, progress) -> { });
  }
}
