package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static io.siterecovery.agent.testing.Tools.run;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.QemuIoSession;
import io.siterecovery.agent.testing.Tools;
import io.siterecovery.agent.vm.VmRecord.Power;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's NBD front-end as seen by real clients we did not write: libnbd's nbdinfo and
 * nbdcopy, and QEMU's block layer through qemu-io and qemu-img.
 */
class NbdConformanceTest {
  private static final long SIZE = 16L << 20;

  @TempDir Path tmp;
  private HostAgent agent;
  private AgentClient client;
  private String uri;

  @BeforeEach
  void start() throws IOException {
    agent = AgentPair.start("primary", tmp.resolve("agent"));
    client = TestCerts.operatorClient(agent);
    client.createVm("web01", List.of(SIZE, 4L << 20));
    uri = agent.nbdUri("web01", "disk0");
  }

  @AfterEach
  void stop() throws IOException {
    agent.close();
  }

  @Test
  void nbdinfoReportsTheExportAndItsCapabilities() {
    assumeInstalled("nbdinfo");
    String info = run("nbdinfo", uri).assertOk().output();
    assertThat(info).contains("newstyle-fixed")
        .contains("export-size: " + SIZE)
        .contains("can_flush: true").contains("can_fua: true")
        .contains("can_trim: true").contains("can_zero: true")
        .contains("is_read_only: false");

    assertThat(run("nbdinfo", "--size", uri).assertOk().output().trim())
        .isEqualTo(Long.toString(SIZE));
    assertThat(run("nbdinfo", "--size", agent.nbdUri("web01", "disk1")).assertOk().output().trim())
        .isEqualTo(Long.toString(4L << 20));
  }

  @Test
  void nbdinfoListsTheExportsOfRunningVms() {
    assumeInstalled("nbdinfo");
    client.createVm("db01", List.of(1L << 20));
    String base = "nbd://127.0.0.1:" + agent.nbdPort();
    assertThat(run("nbdinfo", "--list", base).assertOk().output())
        .contains("export=\"web01/disk0\"", "export=\"web01/disk1\"", "export=\"db01/disk0\"");

    client.setPower("db01", Power.OFF);
    assertThat(run("nbdinfo", "--list", base).assertOk().output())
        .contains("export=\"web01/disk0\"").doesNotContain("db01");
  }

  @Test
  void qemuIoWritesReadsFlushesWithFuaZeroesAndDiscard() {
    assumeInstalled("qemu-io");
    qemuIo(uri,
        "write -P 0xab 0 1M",
        "read -P 0xab 0 1M",
        "flush",
        "write -f -P 0xcd 1M 64k", // FUA
        "read -P 0xcd 1M 64k",
        "write -P 0x11 2M 1M",
        "write -z 2M 512k", // WRITE_ZEROES
        "read -P 0 2M 512k",
        "read -P 0x11 2560k 512k",
        "write -z -f 3M 4k", // WRITE_ZEROES with FUA
        "discard 512k 512k", // TRIM: this device reads zeroes afterwards
        "read -P 0 512k 512k",
        "read -P 0xab 0 512k",
        "write -P 0x5e 1000 3000", // unaligned
        "read -P 0x5e 1000 3000",
        "read -P 0xab 0 1000",
        "read -P 0xab 4000 4k",
        "write -P 0x77 " + (SIZE - 4096) + " 4k", // last block
        "read -P 0x77 " + (SIZE - 4096) + " 4k",
        "flush").assertOk();

    // a second connection (and the image itself) sees what the first one wrote
    qemuIo(uri, "read -P 0xab 0 1000", "read -P 0xcd 1M 64k", "read -P 0 2M 512k").assertOk();
    qemuIo(uri, "read -P 0x12 0 4k").assertFailed(); // the oracle does notice wrong data
  }

  @Test
  void theNegotiatedSizeBoundsTheClientsIo() {
    assumeInstalled("qemu-io");
    // qemu-io checks the bounds itself; this proves the size it negotiated is the disk size.
    qemuIo(uri, "read 0 " + SIZE).assertOk();
    qemuIo(uri, "read " + SIZE + " 512").assertFailed();
  }

  @Test
  void nbdcopyWithSeveralConnectionsMatchesQemuImgCompare() throws IOException {
    assumeInstalled("nbdcopy", "qemu-img");
    Path source = tmp.resolve("random.img");
    byte[] bytes = new byte[(int) SIZE];
    new Random(7).nextBytes(bytes);
    for (int i = 4 << 20; i < 6 << 20; i++) {
      bytes[i] = 0; // a zero hole, which nbdcopy sends as WRITE_ZEROES
    }
    Files.write(source, bytes);
    run("nbdcopy", "--connections=4", "--requests=8", source.toString(), uri).assertOk();

    Tools.compareRaw(source.toString(), uri).assertOk();
    Tools.compareRaw(source.toString(), agent.diskImage("web01", "disk0").toString()).assertOk();

    Path back = tmp.resolve("back.img");
    run("nbdcopy", uri, back.toString()).assertOk();
    assertThat(Files.mismatch(source, back)).isEqualTo(-1L);
  }

  @Test
  void unknownExportIsRefused() {
    assumeInstalled("nbdinfo", "qemu-io");
    String base = "nbd://127.0.0.1:" + agent.nbdPort();
    assertThat(run("nbdinfo", base + "/nope/disk0").assertFailed().output())
        .containsIgnoringCase("nope");
    run("nbdinfo", base + "/web01/disk7").assertFailed();
    run("nbdinfo", base + "/web01").assertFailed();
    run("nbdinfo", base).assertFailed(); // the default export "" does not exist
    qemuIo(base + "/nope/disk0", "read 0 4k").assertFailed();
  }

  @Test
  void unknownExportIsRefusedOnTheOldExportNameOption() throws IOException {
    try (Socket socket = RawNbd.connect(agent.nbdPort())) {
      // the protocol has no error reply to NBD_OPT_EXPORT_NAME: the server closes
      assertThat(RawNbd.exportName(socket, "nope/disk0")).isEqualTo(-1L);
    }
    try (Socket socket = RawNbd.connect(agent.nbdPort())) {
      assertThat(RawNbd.exportName(socket, "web01/disk0")).isEqualTo(SIZE);
    }
  }

  @Test
  void powerOffRemovesTheExportAndDropsConnectedClients() throws Exception {
    assumeInstalled("qemu-io", "nbdinfo");
    qemuIo(uri, "write -P 0xab 0 64k").assertOk();

    // a client that stays connected: qemu-io reading commands from its stdin
    try (QemuIoSession qemu = QemuIoSession.open(uri)) {
      assertThat(qemu.ok("read -P 0xab 0 4k")).contains("read 4096/4096 bytes");

      // and one that sits in the transmission phase without sending anything
      try (Socket idle = RawNbd.connect(agent.nbdPort())) {
        assertThat(RawNbd.exportName(idle, "web01/disk0")).isEqualTo(SIZE);

        client.setPower("web01", Power.OFF);

        assertThat(RawNbd.readsEof(idle)).as("idle client dropped at power-off").isTrue();
      }
      assertThat(qemu.command("read -P 0xab 0 4k")).contains("read failed");

      String base = "nbd://127.0.0.1:" + agent.nbdPort();
      assertThat(run("nbdinfo", "--list", base).output()).doesNotContain("web01/disk0");
      run("nbdinfo", uri).assertFailed();
      qemuIo(uri, "read 0 4k").assertFailed();

      // Power back on: new clients see the data. The old session does not come back, which
      // shows it was dropped and not merely refused while the VM was off.
      client.setPower("web01", Power.RUNNING);
      qemuIo(uri, "read -P 0xab 0 64k").assertOk();
      assertThat(qemu.command("read -P 0xab 0 4k")).contains("read failed");
    }
  }

  /** Just enough of the client side of the handshake to hold a connection open. */
  static final class RawNbd {
    private RawNbd() {}

    static Socket connect(int port) throws IOException {
      Socket socket = new Socket();
      socket.connect(new InetSocketAddress("127.0.0.1", port), 5000);
      socket.setSoTimeout(15_000);
      DataInputStream in = new DataInputStream(socket.getInputStream());
      assertThat(in.readLong()).isEqualTo(NbdProtocol.NBDMAGIC);
      assertThat(in.readLong()).isEqualTo(NbdProtocol.IHAVEOPT);
      assertThat(in.readUnsignedShort() & NbdProtocol.FLAG_FIXED_NEWSTYLE).isNotZero();
      return socket;
    }

    /** Sends NBD_OPT_EXPORT_NAME; returns the export size, or -1 if the server hung up. */
    static long exportName(Socket socket, String name) throws IOException {
      OutputStream raw = socket.getOutputStream();
      DataOutputStream out = new DataOutputStream(raw);
      byte[] n = name.getBytes(StandardCharsets.UTF_8);
      out.writeInt(NbdProtocol.CLIENT_FLAG_FIXED_NEWSTYLE | NbdProtocol.CLIENT_FLAG_NO_ZEROES);
      out.writeLong(NbdProtocol.IHAVEOPT);
      out.writeInt(NbdProtocol.OPT_EXPORT_NAME);
      out.writeInt(n.length);
      out.write(n);
      out.flush();
      DataInputStream in = new DataInputStream(socket.getInputStream());
      try {
        long size = in.readLong();
        in.readUnsignedShort(); // transmission flags
        return size;
      } catch (java.io.EOFException e) {
        return -1;
      }
    }

    /** True if the server closes the connection before the socket timeout. */
    static boolean readsEof(Socket socket) throws IOException {
      try {
        return socket.getInputStream().read() < 0;
      } catch (SocketTimeoutException e) {
        return false;
      } catch (java.net.SocketException e) {
        return true; // reset by the server
      }
    }
  }
}
