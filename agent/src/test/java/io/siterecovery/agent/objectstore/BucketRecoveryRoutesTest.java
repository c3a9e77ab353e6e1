package io.siterecovery.agent.objectstore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoverFromBucketRequest;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.RawHttp;
import java.net.http.HttpResponse;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's routes for instant recovery, as the operator calls them: an agent that knows no
 * object-store site refuses a recovery naming one, answers bounds errors before it looks, and
 * knows no recovery it did not make. (Who may call them: {@code SecurityTest}.)
 */
class BucketRecoveryRoutesTest {
  @TempDir
  Path tmp;

  @Test
  void theRoutesAnswerTheOperatorWithNamedErrors() throws Exception {
    try (AgentPair agents = AgentPair.start(tmp)) {
      HttpResponse<String> unknownSite = post(agents, "/v1/vms/web/recover-from-bucket",
          "{\"site\":\"cloud\",\"bucketVmId\":\"vm-1\",\"point\":1}");
      assertThat(unknownSite.statusCode()).isEqualTo(400);
      assertThat(unknownSite.body()).contains("site cloud is not an object-store site");

      HttpResponse<String> badId = post(agents, "/v1/vms/web/recover-from-bucket",
          "{\"site\":\"cloud\",\"bucketVmId\":\"../etc\"}");
      assertThat(badId.statusCode()).isEqualTo(400);
      assertThat(badId.body()).contains("a VM id is 1-64 of [a-z0-9-]");

      HttpResponse<String> badPoint = post(agents, "/v1/vms/web/recover-from-bucket",
          "{\"site\":\"cloud\",\"bucketVmId\":\"vm-1\",\"point\":0}");
      assertThat(badPoint.statusCode()).isEqualTo(400);

      HttpResponse<String> progress = RawHttp.send(agents.secondary, Identity.operator(), "GET",
          "/v1/vms/web/recovery-progress", null);
      assertThat(progress.statusCode()).isEqualTo(404);
      assertThat(progress.body()).contains("no VM web recovered from a bucket");
      assertThat(RawHttp.send(agents.secondary, Identity.operator(), "DELETE",
          "/v1/vms/web/recover-from-bucket", null).statusCode()).isEqualTo(404);
      assertThat(RawHttp.send(agents.secondary, Identity.operator(), "GET",
          "/v1/bucket-recoveries", null).body()).isEqualTo("[]");

      // the client the workflows use says the same
      assertThatThrownBy(() -> agents.s.recoverFromBucket("web",
          new RecoverFromBucketRequest("cloud", "vm-1", null, true)))
          .hasMessageContaining("site cloud is not an object-store site");
      assertThatThrownBy(() -> agents.s.recoveryProgress("web"))
          .hasMessageContaining("no VM web recovered from a bucket");
      assertThatThrownBy(() -> agents.s.discardBucketRecovery("web"))
          .hasMessageContaining("no VM web recovered from a bucket");
    }
  }

  private static HttpResponse<String> post(AgentPair agents, String path, String body)
      throws Exception {
    return RawHttp.send(agents.secondary, Identity.operator(), "POST", path, body);
  }
}
