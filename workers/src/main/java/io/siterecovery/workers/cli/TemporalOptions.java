package io.siterecovery.workers.cli;

import io.siterecovery.workers.config.SiteRecoveryConfig;
import java.io.IOException;
import java.io.UncheckedIOException;
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

  SiteRecoveryConfig resolve() {
    try {
      SiteRecoveryConfig base = config != null ? SiteRecoveryConfig.load(config) : SiteRecoveryConfig.dev();
      return base.withTemporal(temporal, namespace).withCerts(certs);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + config + ": " + e.getMessage(), e);
    }
  }
}
