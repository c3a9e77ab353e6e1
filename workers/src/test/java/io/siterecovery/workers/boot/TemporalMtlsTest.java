package io.siterecovery.workers.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.grpc.Server;
import io.grpc.netty.shaded.io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.shaded.io.grpc.netty.NettyServerBuilder;
import io.grpc.netty.shaded.io.netty.handler.ssl.ClientAuth;
import io.siterecovery.agent.security.CertificateAuthority;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.workers.dev.WorkerRunner;
import io.siterecovery.workflows.Registration;
import io.siterecovery.workflows.plan.PlanOperation;
import io.siterecovery.workflows.plan.RecoveryPlanInput;
import io.siterecovery.workflows.plan.RecoveryPlanWorkflow;
import io.temporal.client.WorkflowClient;
import io.temporal.client.WorkflowFailedException;
import io.temporal.client.WorkflowOptions;
import io.temporal.internal.testservice.TestServicesStarter;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import io.siterecovery.workers.cli.CliRun;
import java.net.InetSocketAddress;
import java.util.Arrays;
import java.util.stream.Stream;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.springframework.context.ConfigurableApplicationContext;

/**
 * The worker against a Temporal frontend that demands mutual TLS, as a secured cluster or
 * Temporal Cloud does: the frontend's certificate comes from the cluster's own CA (not our
 * deployment's, not one the JVM trusts), and only clients with a certificate from that CA get in.
 * The frontend is Temporal's test service served by gRPC's Netty server with TLS.
 */
class TemporalMtlsTest {
  @TempDir
  Path dir;

  private Path cluster;
  private Path deployment;
  private Server frontend;
  private TestServicesStarter services;

  @BeforeEach
  void startAFrontendThatDemandsClientCertificates() throws Exception {
    cluster = dir.resolve("cluster");
    // The cluster CA issues the frontend's certificate (loopback names) and the worker's client
    // certificate; the identities in them mean nothing to Temporal.
    CertificateAuthority.provision(cluster, "temporal-cluster",
        List.of(Identity.worker(), Identity.operator()));
    deployment = dir.resolve("certs");
    CertificateAuthority.provision(deployment, "test", List.of(Identity.operator(),
        Identity.worker()));
    services = new TestServicesStarter(true, 0);
    NettyServerBuilder builder = NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1",
        0)).sslContext(GrpcSslContexts.forServer(cluster.resolve("worker.pem").toFile(),
            cluster.resolve("worker-key.pem").toFile())
        .trustManager(cluster.resolve("ca.pem").toFile()).clientAuth(ClientAuth.REQUIRE).build());
    services.getServices().forEach(builder::addService);
    frontend = builder.build().start();
  }

  @AfterEach
  void stop() throws Exception {
    frontend.shutdownNow().awaitTermination(10, TimeUnit.SECONDS);
    services.close();
  }

  @Test
  void aWorkerWithTheClusterCertificateRunsWorkflowsOverMutualTls() throws Exception {
    try (ConfigurableApplicationContext worker = WorkerApplication.start(withMtls(true))) {
      WorkflowServiceStubs service = WorkflowServiceStubs.newServiceStubs(
          WorkflowServiceStubsOptions.newBuilder().setTarget(target())
              .setSslContext(TemporalTls.sslContext(cluster.resolve("operator.pem"),
                  cluster.resolve("operator-key.pem"), cluster.resolve("ca.pem")))
              .build());
      try {
        WorkflowClient client = WorkerRunner.client(service, "default");
        RecoveryPlanWorkflow plan = client.newWorkflowStub(RecoveryPlanWorkflow.class,
            WorkflowOptions.newBuilder().setTaskQueue(Registration.TASK_QUEUE)
                .setWorkflowId(RecoveryPlanWorkflow.workflowId("nowhere")).build());
        // Workflow tasks and the plan lookup went through the worker, over TLS, to fail so.
        assertThatThrownBy(() -> plan.run(new RecoveryPlanInput("nowhere", PlanOperation.VALIDATE,
            null, null))).isInstanceOf(WorkflowFailedException.class)
            .rootCause().hasMessageContaining("nowhere");
      } finally {
        service.shutdownNow();
      }
    }
  }

  @Test
  void withoutTheClusterCaTheWorkerRefusesTheFrontendAndSaysWhy() {
    assertThatThrownBy(() -> WorkerApplication.start(withMtls(false)).close())
        .hasStackTraceContaining("cannot register the search attributes")
        .rootCause().hasMessageContaining("certification path");
  }

  @Test
  void aWorkerWithoutAClientCertificateIsRefusedByTheFrontend() {
    Map<String, String> properties = base();
    properties.put("spring.temporal.connection.enable-https", "true");
    assertThatThrownBy(() -> WorkerApplication.start(properties).close())
        .hasStackTraceContaining("cannot register the search attributes");
  }

  /** The operator's CLI takes the same files, as flags or the temporal CLI's variables. */
  @Test
  void theCliStartsWorkflowsOverMutualTlsAndIsRefusedWithout() {
    String[] tls = {"--temporal-tls-cert", cluster.resolve("operator.pem").toString(),
        "--temporal-tls-key", cluster.resolve("operator-key.pem").toString(),
        "--temporal-tls-ca", cluster.resolve("ca.pem").toString()};
    assertThat(cli("protect", "web01")).as("no client certificate").isNotZero();
    assertThat(cli(concat(new String[] {"protect", "web01"}, tls))).isZero();
    WorkflowServiceStubs service = WorkflowServiceStubs.newServiceStubs(
        WorkflowServiceStubsOptions.newBuilder().setTarget(target())
            .setSslContext(TemporalTls.sslContext(cluster.resolve("operator.pem"),
                cluster.resolve("operator-key.pem"), cluster.resolve("ca.pem"))).build());
    try {
      assertThat(WorkerRunner.client(service, "default").newUntypedWorkflowStub("protect-web01")
          .describe().getWorkflowType()).isEqualTo("ProtectVm");
    } finally {
      service.shutdownNow();
    }
  }

  private int cli(String... args) {
    return CliRun.of(concat(args, new String[] {"--temporal", target(), "--certs",
        deployment.toString()})).exit();
  }

  private static String[] concat(String[] a, String[] b) {
    return Stream.concat(Arrays.stream(a), Arrays.stream(b)).toArray(String[]::new);
  }

  private Map<String, String> withMtls(boolean trustClusterCa) {
    Map<String, String> properties = base();
    properties.put("spring.temporal.connection.mtls.cert-chain-file",
        cluster.resolve("operator.pem").toString());
    properties.put("spring.temporal.connection.mtls.key-file",
        cluster.resolve("operator-key.pem").toString());
    if (trustClusterCa) {
      properties.put("site-recovery.temporal-server-ca", cluster.resolve("ca.pem").toString());
    }
    return properties;
  }

  private Map<String, String> base() {
    Map<String, String> properties = new LinkedHashMap<>();
    properties.put("spring.temporal.connection.target", target());
    properties.put("site-recovery.certs", deployment.toString());
    properties.put("server.port", "0");
    return properties;
  }

  private String target() {
    return "127.0.0.1:" + frontend.getPort();
  }
}
