package io.siterecovery.workers.cli;

import io.siterecovery.workers.dev.FreePorts;
import io.siterecovery.workers.dev.WorkerRunner;
import io.temporal.client.WorkflowClient;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.testserver.TestServer;
import java.io.IOException;
import java.util.Arrays;
import java.util.stream.Stream;

/**
 * Temporal's test server on a port of its own and no worker: what a CLI verb starts or signals
 * stays as the server recorded it, to be read back.
 */
final class WorkerlessServer implements AutoCloseable {
  private final TestServer.PortBoundTestServer server;
  private final WorkflowServiceStubs service;
  final String address;
  final WorkflowClient client;

  WorkerlessServer() throws IOException {
    int port = FreePorts.next();
    server = TestServer.createPortBoundServer(port, true);
    address = "127.0.0.1:" + port;
    service = WorkerRunner.connect(address);
    client = WorkerRunner.client(service, "default");
  }

  /** The CLI against this server, as main would run it. */
  CliRun cli(String... args) {
    return CliRun.of(Stream.concat(Arrays.stream(args), Stream.of("--temporal", address))
        .toArray(String[]::new));
  }

  @Override
  public void close() {
    service.shutdownNow();
    server.close();
  }
}
