package io.siterecovery.workers.cli;

import io.siterecovery.workers.config.SiteRecoveryConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
import io.siterecovery.workers.boot.TemporalTls;
import io.siterecovery.workers.dev.WorkerRunner;
import io.temporal.serviceclient.WorkflowServiceStubs;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/** Options shared by commands that talk to Temporal or to agents. */
final class TemporalOptions {
  @Option(names = "--temporal", description = "Temporal frontend host:port (default: 127.0.0.1:7233)")
  String temporal;

  @Option(names = "--namespace", description = "Temporal namespace (default: default)")
  String namespace;

  @Option(names = "--config", description = "JSON configuration file (sites, partners, policies)")
  Path config;

  @Option(names = "--certs", description = "folder with ca.pem and the operator's certificate "
      + "(default: the configuration's \"certs\", else .site-recovery/dev/certs)")
  Path certs;

  @Option(names = "--temporal-tls-cert", defaultValue = "${env:TEMPORAL_TLS_CLIENT_CERT_PATH}",
      description = "client certificate (PEM) for a Temporal frontend that requires mutual TLS "
          + "(default: TEMPORAL_TLS_CLIENT_CERT_PATH, as the temporal CLI reads it)")
  Path tlsCert;

  @Option(names = "--temporal-tls-key", defaultValue = "${env:TEMPORAL_TLS_CLIENT_KEY_PATH}",
      description = "its private key, PKCS#8 PEM (default: TEMPORAL_TLS_CLIENT_KEY_PATH)")
  Path tlsKey;

  @Option(names = "--temporal-tls-ca", defaultValue = "${env:TEMPORAL_TLS_SERVER_CA_CERT_PATH}",
      description = "the frontend certificate's CA when the JVM does not trust it "
          + "(default: TEMPORAL_TLS_SERVER_CA_CERT_PATH)")
  Path tlsCa;

  /** Connects to the Temporal frontend, with mutual TLS when a client certificate is given. */
  WorkflowServiceStubs connect(SiteRecoveryConfig config) {
    if (tlsCert == null && tlsKey == null) {
      if (tlsCa != null) {
        throw new IllegalArgumentException("--temporal-tls-ca needs --temporal-tls-cert and "
            + "--temporal-tls-key");
      }
      return WorkerRunner.connect(config.temporal());
    }
    if (tlsCert == null || tlsKey == null) {
      throw new IllegalArgumentException("mutual TLS to Temporal needs both --temporal-tls-cert "
          + "and --temporal-tls-key");
    }
    return WorkflowServiceStubs.newServiceStubs(WorkflowServiceStubsOptions.newBuilder()
        .setTarget(config.temporal())
        .setSslContext(TemporalTls.sslContext(tlsCert, tlsKey, tlsCa)).build());
  }

  SiteRecoveryConfig resolve() {
    try {
      SiteRecoveryConfig base = config != null ? SiteRecoveryConfig.load(config) : SiteRecoveryConfig.dev();
      return base.withTemporal(temporal, namespace).withCerts(certs);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + config + ": " + e.getMessage(), e);
    }
  }
}
