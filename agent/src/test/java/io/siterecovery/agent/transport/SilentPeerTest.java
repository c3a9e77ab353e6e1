package io.siterecovery.agent.transport;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.TransferOptions;
import io.siterecovery.agent.testing.AgentPair;
import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A peer that accepts connections and never answers (chaos: "silent peer") fails the source's
 * calls within {@link AgentClient#ANSWER_TIMEOUT} (pooled connections gone silent) instead of their
 * hour-long deadline; a capped, slow transfer still succeeds; once the peer is back the next call
 * works.
 */
class SilentPeerTest {
  private static final long MIB = 1L << 20;
  /** The documented bound plus the watch period and the calls' own overhead. */
  private static final double BOUND_SECONDS = AgentClient.ANSWER_TIMEOUT.toSeconds() + 5;

  @TempDir Path tmp;
  private AgentPair agents;
  private Relay relay;

  @AfterEach
  void stop() throws IOException {
    if (relay != null) {
      relay.close();
    }
    if (agents != null) {
      agents.close();
    }
  }

  /**
   * A TCP relay to the replica's agent that can turn silent as the chaos suite's link proxy
   * does: connections open at that moment stay open and never move a byte again, new ones are
   * accepted and never answered; {@link #heal()} lets new connections through again.
   */
  private static final class Relay implements AutoCloseable {
    private final ServerSocket server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
    private final int upstream;
    private final List<Socket> sockets = new CopyOnWriteArrayList<>();
    private final Object gate = new Object();
    private long epoch; // bumped by silence(); a connection of an older epoch never moves again
    private boolean silent;

    Relay(int upstream) throws IOException {
      this.upstream = upstream;
      daemon(this::accept, "relay-accept");
    }

    String url() {
      return "https://127.0.0.1:" + server.getLocalPort();
    }

    void silence() {
      synchronized (gate) {
        silent = true;
        epoch++;
      }
    }

    void heal() {
      synchronized (gate) {
        silent = false;
      }
    }

    private void accept() {
      while (!server.isClosed()) {
        try {
          Socket client = server.accept();
          sockets.add(client);
          long born;
          synchronized (gate) {
            born = epoch;
            if (silent) {
              continue; // accepted and never answered
            }
          }
          Socket target = new Socket(InetAddress.getLoopbackAddress(), upstream);
          sockets.add(target);
          daemon(() -> pipe(client, target, born), "relay-up");
          daemon(() -> pipe(target, client, born), "relay-down");
        } catch (IOException closed) {
          return;
        }
      }
    }

    private void pipe(Socket from, Socket to, long born) {
      byte[] buf = new byte[64 << 10];
      try {
        for (int n; (n = from.getInputStream().read(buf)) >= 0; ) {
          synchronized (gate) {
            while (epoch != born) {
              gate.wait();
            }
          }
          to.getOutputStream().write(buf, 0, n);
        }
        to.shutdownOutput();
      } catch (IOException | InterruptedException e) {
        // the relay is closing or a side went away
      }
    }

    private static void daemon(Runnable r, String name) {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      t.start();
    }

    @Override
    public void close() throws IOException {
      server.close();
      for (Socket s : sockets) {
        s.close();
      }
    }
  }

  private static byte[] random(long size, long seed) {
    byte[] b = new byte[(int) size];
    new Random(seed).nextBytes(b);
    return b;
  }

  private static double seconds(long since) {
    return (System.nanoTime() - since) / 1e9;
  }

  @Test
  void callsToASilentPeerFailPromptlyASlowCappedTransferSucceedsAndTheNextCallWorks()
      throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    agents = AgentPair.start(tmp);
    relay = new Relay(java.net.URI.create(agents.secondary.url()).getPort());
    agents.primary.addPeer(agents.secondary.site(), relay.url());
    long size = 4 * MIB;
    agents.p.createVm("vm", List.of(size));
    Path content = Files.write(tmp.resolve("random.bin"), random(size, 1));
    qemuIo(agents.primary.nbdUri("vm", "disk0"), "write -s " + content + " 0 " + size)
        .assertOk();
    agents.p.enableProtection("vm", agents.secondary.site());

    // A capped copy of 3 MiB at 0.5 MB/s: over 6 s of a peer that is slow, never silent.
    TransferOptions slow = new TransferOptions(false, 0.5);
    long start = System.nanoTime();
    assertThat(agents.p.copyRange("vm", "disk0", 0, 3 * MIB, slow).bytesSent())
        .isEqualTo(3 * MIB);
    double capped = seconds(start);
    assertThat(capped).isGreaterThan(5.5);
    agents.p.copyRange("vm", "disk0", 3 * MIB, size - 3 * MIB);
    agents.p.completeInitialReplication("vm");

    // The source's pooled connections to the peer go silent mid-life, and so do new ones.
    Path more = Files.write(tmp.resolve("more.bin"), random(MIB, 2));
    qemuIo(agents.primary.nbdUri("vm", "disk0"), "write -s " + more + " 1M 1M").assertOk();
    relay.silence();
    start = System.nanoTime();
    AgentException replicate = catchThrowableOfType(() -> agents.p.replicate("vm"),
        AgentException.class);
    double replicateSeconds = seconds(start);
    start = System.nanoTime();
    AgentException copy = catchThrowableOfType(() -> agents.p.copyRange("vm", "disk0", 0, MIB),
        AgentException.class);
    double copySeconds = seconds(start);
    System.out.printf("silent peer: replicate failed after %.1f s (%s); copyRange after %.1f s"
        + " (%s); a 3 MiB copy at 0.5 MB/s took %.1f s%n", replicateSeconds,
        replicate.getMessage(), copySeconds, copy.getMessage(), capped);
    for (AgentException e : List.of(replicate, copy)) {
      assertThat(e.code()).isEqualTo(ErrorCode.PEER_UNREACHABLE);
      assertThat(e.code().recoverable()).isTrue();
    }
    assertThat(replicateSeconds).isLessThan(BOUND_SECONDS);
    assertThat(copySeconds).isLessThan(BOUND_SECONDS);

    // The peer recovers for new connections only: the silent ones were dropped, so the next
    // cycle ships the log the failed one kept, capped again.
    relay.heal();
    start = System.nanoTime();
    assertThat(agents.p.replicate("vm", slow).logsShipped()).isPositive();
    System.out.printf("after the peer recovered: a capped cycle in %.1f s%n", seconds(start));
    compareRaw(agents.primaryImage("vm", "disk0"), agents.replicaImage("vm", "disk0"))
        .assertOk();
  }
}
