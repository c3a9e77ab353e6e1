package io.siterecovery.workers.bench;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import java.io.IOException;
import java.nio.file.Path;

/** A primary and a secondary host agent in this process, on 127.0.0.1 with free ports. */
final class LocalSites implements AutoCloseable {
  static final long MIB = 1L << 20;

  final HostAgent primary;
  final HostAgent secondary;
  final AgentClient source;

  LocalSites(Path dir) throws IOException {
    primary = agent("primary", dir.resolve("primary"));
    try {
      secondary = agent("secondary", dir.resolve("secondary"));
    } catch (IOException | RuntimeException e) {
      primary.close();
      throw e;
    }
    source = new AgentClient(primary.url());
  }

  static HostAgent agent(String site, Path dataDir) throws IOException {
    return new HostAgent(new HostAgent.Settings(site, dataDir, "127.0.0.1", 0, 0));
  }

  /** Protects a one-disk VM and runs its initial replication as the workflow would. */
  void protect(String vm, long diskSize) {
    source.enableProtection(vm, secondary.site(), secondary.url());
    for (long at = 0; at < diskSize; ) {
      at = source.copyRange(vm, "disk0", at, Math.min(256 * MIB, diskSize - at)).nextOffset();
    }
    source.replicate(vm);
    source.completeInitialReplication(vm);
  }

  @Override
  public void close() throws IOException {
    try {
      primary.close();
    } finally {
      secondary.close();
    }
  }
}
