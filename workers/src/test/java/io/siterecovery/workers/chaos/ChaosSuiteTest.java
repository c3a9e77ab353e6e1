package io.siterecovery.workers.chaos;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.siterecovery.workers.chaos.Scenario.Fault;
import io.siterecovery.workers.chaos.Scenario.Phase;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The bounded tier of the fault-injection suite: four faults on real child processes with real
 * writes, each recovered and verified by {@code qemu-img compare} and the writes' own contents.
 * The limits are the scenarios' (5 minutes each); nothing here asserts a time.
 */
class ChaosSuiteTest {
  @TempDir Path dir;

  @Test
  void boundedRunRecoversLosesNothingAndCorruptsNothing() throws Exception {
    assumeTrue(new File("/usr/bin/qemu-img").canExecute() || onPath("qemu-img"),
        "qemu-img not installed (./run-tests installs it): the oracle of this suite");
    ByteArrayOutputStream printed = new ByteArrayOutputStream();
    PrintStream out = new PrintStream(printed, true, StandardCharsets.UTF_8);
    List<Scenario> bounded = List.of(
        scenario(Fault.WORKER_KILL, Phase.INITIAL_COPY, Duration.ZERO),
        scenario(Fault.SOURCE_AGENT_KILL, Phase.DELTA, Duration.ZERO),
        scenario(Fault.REPLICA_AGENT_KILL, Phase.DELTA, Duration.ZERO),
        scenario(Fault.LINK_CUT, Phase.DELTA, Duration.ofSeconds(10)));
    ChaosReport report = ChaosSuite.run(dir, bounded, 20261129L, out);
    System.out.println(printed.toString(StandardCharsets.UTF_8));
    assertThat(report.runs()).hasSize(4);
    assertThat(report.injected()).as(printed.toString(StandardCharsets.UTF_8)).isEqualTo(4);
    assertThat(report.lostWrites()).as("acknowledged writes lost").isZero();
    assertThat(report.corruptReplicas()).as("replicas corrupt").isZero();
    assertThat(report.recovered()).as("runs recovered").isEqualTo(4);
    assertThat(report.ok()).as(printed.toString(StandardCharsets.UTF_8)).isTrue();
  }

  @Test
  void theLinkProxyForwardsCutsAndSilences() throws Exception {
    try (java.net.ServerSocket echo = new java.net.ServerSocket(0, 5,
            java.net.InetAddress.getLoopbackAddress());
        LinkProxy link = new LinkProxy(echo.getLocalPort())) {
      Thread server = new Thread(() -> {
        try {
          while (true) {
            java.net.Socket s = echo.accept();
            Thread t = new Thread(() -> {
              try (s) {
                s.getInputStream().transferTo(s.getOutputStream());
              } catch (java.io.IOException ignored) {
                // the proxy reset it
              }
            });
            t.setDaemon(true);
            t.start();
          }
        } catch (java.io.IOException closed) {
          // test over
        }
      });
      server.setDaemon(true);
      server.start();
      try (java.net.Socket c = new java.net.Socket(java.net.InetAddress.getLoopbackAddress(),
          link.port())) {
        c.setSoTimeout(2000);
        c.getOutputStream().write(1);
        assertThat(c.getInputStream().read()).isEqualTo(1);
        link.cut();
        c.getOutputStream().write(2);
        c.setSoTimeout(300);
        assertThat(readTimesOut(c)).as("nothing moves during a cut").isTrue();
        link.heal();
        c.setSoTimeout(2000);
        assertThat(c.getInputStream().read()).as("held byte delivered after heal").isEqualTo(2);
        link.silence();
        link.heal();
        c.getOutputStream().write(3);
        c.setSoTimeout(300);
        assertThat(readTimesOut(c)).as("a silenced connection stays silent").isTrue();
      }
      try (java.net.Socket fresh = new java.net.Socket(java.net.InetAddress.getLoopbackAddress(),
          link.port())) {
        fresh.setSoTimeout(2000);
        fresh.getOutputStream().write(4);
        assertThat(fresh.getInputStream().read()).as("new connections pass after heal")
            .isEqualTo(4);
        link.resetAll();
        assertThat(fresh.getInputStream().read()).as("reset").isEqualTo(-1);
      } catch (java.net.SocketException reset) {
        assertThat(reset.getMessage()).containsIgnoringCase("reset");
      }
      assertThat(link.bytesToTarget()).isGreaterThanOrEqualTo(3);
    }
  }

  private static boolean readTimesOut(java.net.Socket c) throws java.io.IOException {
    try {
      c.getInputStream().read();
      return false;
    } catch (java.net.SocketTimeoutException expected) {
      return true;
    }
  }

  private static Scenario scenario(Fault fault, Phase phase, Duration length) {
    return new Scenario(fault, phase, length, Duration.ofMinutes(5));
  }

  private static boolean onPath(String program) {
    for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
      if (new File(d, program).canExecute()) {
        return true;
      }
    }
    return false;
  }
}
