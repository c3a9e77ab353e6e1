package io.siterecovery.workers.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.temporal.client.WorkflowClient;
import java.io.IOException;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/**
 * Every workflow the CLI starts carries a static summary: the line the Temporal Web UI shows on
 * its page and in its list. Read back from the server (DescribeWorkflowExecution), without a
 * worker: the summary belongs to the start request.
 */
class StaticSummaryCommandsTest {
  private WorkerlessServer server;
  private WorkflowClient client;

  @BeforeEach
  void startServer() throws IOException {
    server = new WorkerlessServer();
    client = server.client;
  }

  @AfterEach
  void stopServer() {
    server.close();
  }

  private int cli(String... args) {
    return server.cli(args).exit();
  }


  private String summaryOf(String workflowId) {
    return client.newUntypedWorkflowStub(workflowId).describe().getStaticSummary();
  }

  @Test
  void eachVerbThatStartsAWorkflowSaysWhatItIsFor() {
    assertThat(cli("protect", "web01", "--policy", "gold")).isZero();
    assertThat(cli("failover", "web01", "--type", "TEST", "--point", "rp-5")).isZero();
    assertThat(cli("failover", "db01")).isZero();
    assertThat(cli("reprotect", "app01")).isZero();
    assertThat(cli("failback", "web02", "--no-reprotect")).isZero();
    assertThat(cli("plan", "start", "erp", "--operation", "TEST_FAILOVER")).isZero();

    assertThat(summaryOf("protect-web01")).isEqualTo("Protect web01, policy gold");
    assertThat(summaryOf("test-failover-web01")).isEqualTo("Test failover of web01 at rp-5");
    assertThat(summaryOf("failover-db01")).isEqualTo("Planned failover of db01");
    assertThat(summaryOf("reprotect-app01"))
        .isEqualTo("Reprotect app01: reverse replication, policy default");
    assertThat(summaryOf("failback-web02")).isEqualTo("Failback of web02 to its home site");
    assertThat(summaryOf("plan-erp")).isEqualTo("Recovery plan erp: test failover");
  }
}
