package io.siterecovery.workers.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.workers.dev.WorkerRunner;
import io.temporal.client.WorkflowClient;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.testserver.TestServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.net.ServerSocket;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * Every workflow the CLI starts carries a static summary: the line the Temporal Web UI shows on
 * its page and in its list. Read back from the server (DescribeWorkflowExecution), without a
 * worker: the summary belongs to the start request.
 */
class StaticSummaryCommandsTest {
  private TestServer.PortBoundTestServer server;
  private String address;
  private WorkflowServiceStubs service;
  private WorkflowClient client;

  @BeforeEach
  void startServer() throws IOException {
    int port;
    try (ServerSocket s = new ServerSocket(0)) {
      port = s.getLocalPort();
    }
    server = TestServer.createPortBoundServer(port, true);
    address = "127.0.0.1:" + port;
    service = WorkerRunner.connect(address);
    client = WorkerRunner.client(service, "default");
  }

  @AfterEach
  void stopServer() {
    service.shutdownNow();
    server.close();
  }

  private int cli(String... args) {
    String[] all = java.util.stream.Stream.concat(java.util.Arrays.stream(args),
        java.util.stream.Stream.of("--temporal", address)).toArray(String[]::new);
    PrintStream out = System.out;
    System.setOut(new PrintStream(new ByteArrayOutputStream(), true));
    try {
      return new CommandLine(new SiteRecoveryCli()).execute(all);
    } finally {
      System.setOut(out);
    }
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
