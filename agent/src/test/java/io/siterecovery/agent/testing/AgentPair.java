package io.siterecovery.agent.testing;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.server.AgentHttpServer;
import io.siterecovery.agent.api.AgentMessages.CopyRangeResult;
import io.siterecovery.agent.vm.VmRecord;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;

/** A primary and a secondary host agent in one test, on 127.0.0.1 with free ports. */
public final class AgentPair implements AutoCloseable {
  public final HostAgent primary;
  public final HostAgent secondary;
  public final AgentClient p;
  public final AgentClient s;
  /** The secondary as the primary's agent reaches it: feeding its replicas as site:primary. */
  public final AgentClient feed;

  private AgentPair(HostAgent primary, HostAgent secondary) {
    this.primary = primary;
    this.secondary = secondary;
    this.p = TestCerts.operatorClient(primary);
    this.s = TestCerts.operatorClient(secondary);
    this.feed = TestCerts.clientAs(Identity.site(primary.site()), secondary);
    primary.addPeer(secondary.site(), secondary.url());
    secondary.addPeer(primary.site(), primary.url());
  }

  public static AgentPair start(Path root) throws IOException {
    return start(root, AgentHttpServer.Limits.defaults());
  }

  /** A pair whose API servers have the given bounds (shorter timeouts, say). */
  public static AgentPair start(Path root, AgentHttpServer.Limits limits) throws IOException {
    HostAgent primary = start("primary", root.resolve("primary"), limits);
    try {
      return new AgentPair(primary, start("secondary", root.resolve("secondary"), limits));
    } catch (IOException | RuntimeException e) {
      primary.close();
      throw e;
    }
  }

  /** An agent of {@code site} over TLS with the tests' CA, with no peer yet. */
  public static HostAgent start(String site, Path dataDir) throws IOException {
    return start(site, dataDir, AgentHttpServer.Limits.defaults());
  }

  /** An agent as {@link #start(String, Path)} whose API server has the given bounds. */
  public static HostAgent start(String site, Path dataDir, AgentHttpServer.Limits limits)
      throws IOException {
    return new HostAgent(new HostAgent.Settings(site, dataDir, "127.0.0.1", 0, 0,
        TestCerts.site(site), java.util.Map.of(), HostAgent.Settings.LOOPBACK, false, limits));
  }

  /** Creates a running VM on the primary and protects it towards the secondary. */
  public VmRecord createProtected(String vm, long... diskSizes) {
    java.util.List<Long> sizes = java.util.Arrays.stream(diskSizes).boxed().toList();
    VmRecord record = p.createVm(vm, sizes);
    p.enableProtection(vm, secondary.site());
    return record;
  }

  /**
   * Copies a whole disk in steps of {@code step} bytes as the workflow would, running
   * {@code between} after each step (the writes that race the copy); returns the bytes sent.
   */
  public long initialCopy(String vm, String disk, long size, long step, Runnable between) {
    long offset = 0;
    long sent = 0;
    while (offset < size) {
      CopyRangeResult r = p.copyRange(vm, disk, offset, step);
      assertThat(r.offset()).isEqualTo(offset);
      assertThat(r.nextOffset()).isGreaterThan(offset);
      sent += r.bytesSent();
      offset = r.nextOffset();
      if (between != null) {
        between.run();
      }
    }
    return sent;
  }

  public String primaryImage(String vm, String disk) {
    return primary.diskImage(vm, disk).toString();
  }

  public String replicaImage(String vm, String disk) {
    return secondary.diskImage(vm, disk).toString();
  }

  private boolean closed;

  @Override
  public void close() {
    if (closed) {
      return;
    }
    closed = true;
    try {
      try {
        primary.close();
      } finally {
        secondary.close();
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }
}
