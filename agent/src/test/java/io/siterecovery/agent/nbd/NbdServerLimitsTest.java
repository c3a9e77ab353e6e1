package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.nbd.NbdProtocol.*;
import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.disk.VirtualDisk;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.function.BooleanSupplier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The server's resource bounds: a connection cap, one deadline for the whole handshake, a shared
 * payload budget, and failures that end one connection and never the server.
 */
class NbdServerLimitsTest {
  private static final long SIZE = 16L << 20;
  private static final long BUDGET = 64L << 20;

  @TempDir Path tmp;
  private VirtualDisk disk;
  private final List<Socket> idle = new ArrayList<>();
  private NbdServer server;

  @BeforeEach
  void disk() throws IOException {
    Path image = tmp.resolve("disk0.img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(SIZE);
    }
    disk = new VirtualDisk("disk0", UUID.randomUUID(), image, SIZE);
  }

  @AfterEach
  void stop() throws IOException {
    for (Socket s : idle) {
      s.close();
    }
    if (server != null) {
      server.close();
    }
    disk.close();
  }

  private NbdServer start(int maxConnections, Duration handshakeTimeout, ExportResolver exports)
      throws IOException {
    server = new NbdServer(exports, new InetSocketAddress("127.0.0.1", 0),
        new NbdServer.Limits(maxConnections, handshakeTimeout, BUDGET), null);
    return server;
  }

  private ExportResolver diskOnly() {
    return exports("vm/disk0", disk);
  }

  private static ExportResolver exports(String name, BlockDevice device) {
    return new ExportResolver() {
      @Override
      public Optional<BlockDevice> openExport(String exportName) {
        return exportName.equals(name) ? Optional.of(device) : Optional.empty();
      }

      @Override
      public List<String> exportNames() {
        return List.of(name);
      }
    };
  }

  private String uri() {
    return "nbd://127.0.0.1:" + server.port() + "/vm/disk0";
  }

  /** Opens connections that never send a byte. */
  private void openIdle(int count) throws IOException {
    for (int i = 0; i < count; i++) {
      Socket s = new Socket();
      s.connect(new InetSocketAddress("127.0.0.1", server.port()), 5000);
      idle.add(s);
    }
  }

  /**
   * Reads what the server sends on an idle connection until it closes it: the 18-byte greeting if
   * it was admitted, nothing if it was refused. -1 if still open at the timeout.
   */
  private static int bytesBeforeClose(Socket s, Duration timeout) throws IOException {
    s.setSoTimeout((int) timeout.toMillis());
    InputStream in = s.getInputStream();
    int n = 0;
    try {
      while (in.read() >= 0) {
        n++;
      }
      return n;
    } catch (SocketTimeoutException e) {
      return -1;
    } catch (java.net.SocketException e) {
      return n; // reset by the server
    }
  }

  private static long heapAfterGc() {
    for (int i = 0; i < 3; i++) {
      System.gc();
    }
    return ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
  }

  private static void await(BooleanSupplier condition, Duration timeout, String what)
      throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (!condition.getAsBoolean()) {
      assertThat(System.nanoTime()).as("timed out waiting until " + what).isLessThan(deadline);
      Thread.sleep(20);
    }
  }

  @Test
  void idleConnectionsCostLittleAndCloseAtTheHandshakeDeadlineWhileARealClientWorks()
      throws Exception {
    assumeInstalled("qemu-io");
    start(1000, Duration.ofSeconds(6), diskOnly());
    long heapBefore = heapAfterGc();

    openIdle(500);
    await(() -> server.connectionCount() == 500, Duration.ofSeconds(10), "500 connections held");
    long perConnection = (heapAfterGc() - heapBefore) / 500;
    // A 1 MiB buffer, or even two 128 KiB stream buffers, per connection would be 500 MiB or
    // 128 MiB here, beyond the agent's -Xmx256m.
    assertThat(perConnection).as("heap bytes per idle connection").isLessThan(40 << 10);

    qemuIo(uri(), "write -P 0xab 0 1M", "read -P 0xab 0 1M").assertOk();
    assertThat(server.connectionCount()).as("the idle ones are still there").isEqualTo(500);

    for (Socket s : idle) {
      assertThat(bytesBeforeClose(s, Duration.ofSeconds(15))).as("greeting, then closed")
          .isEqualTo(18);
    }
    await(() -> server.connectionCount() == 0, Duration.ofSeconds(5), "all connections gone");
    qemuIo(uri(), "read -P 0xab 0 1M").assertOk();
  }

  @Test
  void atTheCapANewcomerEvictsTheLongestHandshakeButNeverAConnectionInUse() throws Exception {
    start(256, Duration.ofSeconds(30), diskOnly());
    try (RawNbdClient inUse = RawNbdClient.go(server.port(), "vm/disk0")) {
      openIdle(500);
      int evicted = 0;
      for (Socket s : idle) {
        // every newcomer is admitted and greeted; the oldest handshakes make room for it
        s.setSoTimeout(5000);
        assertThat(s.getInputStream().readNBytes(18)).as("the greeting").hasSize(18);
      }
      for (Socket s : idle.subList(0, 500 - 255)) {
        if (bytesBeforeClose(s, Duration.ofSeconds(5)) == 0) {
          evicted++;
        }
      }
      assertThat(evicted).as("the 245 oldest handshakes").isEqualTo(245);
      assertThat(server.connectionCount()).as("255 newest and the one in use").isEqualTo(256);
      assertThat(inUse.write(0, 0, 4096, 0x11).error()).isZero();
      assertThat(inUse.read(0, 0, 4096).data()).containsOnly((byte) 0x11);
      try (RawNbdClient late = RawNbdClient.go(server.port(), "vm/disk0")) {
        assertThat(late.read(0, 0, 4096).data()).containsOnly((byte) 0x11);
      }
    }
  }

  @Test
  void whenEverySlotIsInUseANewcomerIsClosedWithoutAGreeting() throws Exception {
    start(2, Duration.ofSeconds(5), diskOnly());
    try (RawNbdClient a = RawNbdClient.go(server.port(), "vm/disk0");
        RawNbdClient b = RawNbdClient.go(server.port(), "vm/disk0");
        Socket late = new Socket("127.0.0.1", server.port())) {
      assertThat(bytesBeforeClose(late, Duration.ofSeconds(2))).isZero();
      assertThat(a.read(0, 0, 4096).error()).isZero();
      assertThat(b.read(0, 0, 4096).error()).isZero();
    }
  }

  @Test
  void aClientTricklingItsHandshakeIsClosedAtTheDeadline() throws Exception {
    start(10, Duration.ofSeconds(1), diskOnly());
    try (Socket s = new Socket("127.0.0.1", server.port())) {
      long start = System.nanoTime();
      assertThat(s.getInputStream().readNBytes(18)).hasSize(18); // the greeting
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      out.writeInt(CLIENT_FLAG_FIXED_NEWSTYLE);
      out.flush();
      // An option header a byte every 200 ms: each read completes well within the 1 s limit, so
      // only a deadline for the whole handshake ends this.
      for (int i = 0; i < 50 && server.connectionCount() > 0; i++) {
        try {
          out.write(0x49);
          out.flush();
        } catch (IOException e) {
          break; // reset by the server
        }
        Thread.sleep(200);
      }
      Duration took = Duration.ofNanos(System.nanoTime() - start);
      assertThat(server.connectionCount()).as("closed while trickling").isZero();
      assertThat(took).isBetween(Duration.ofMillis(900), Duration.ofSeconds(4));
    }
  }

  @Test
  void transmissionHasNoDeadline() throws Exception {
    start(10, Duration.ofMillis(500), diskOnly());
    try (RawNbdClient nbd = RawNbdClient.go(server.port(), "vm/disk0")) {
      Thread.sleep(1500); // an idle VM is legitimate
      assertThat(nbd.write(CMD_FLAG_FUA, 0, 4096, 0x22).error()).isZero();
      assertThat(nbd.read(0, 0, 4096).data()).containsOnly((byte) 0x22);
    }
  }

  /** A device that fails in a way no caller expects. */
  private record Exploding(VirtualDisk disk, Throwable failure) implements BlockDevice {
    @Override
    public long size() {
      return disk.size();
    }

    @Override
    public boolean readOnly() {
      return false;
    }

    @Override
    public void read(long offset, ByteBuffer dst) {
      throw sneaky(failure);
    }

    @Override
    public void write(long offset, ByteBuffer src, boolean fua) throws IOException {
      disk.write(offset, src, fua);
    }

    @Override
    public void writeZeroes(long offset, long length, boolean fua) throws IOException {
      disk.writeZeroes(offset, length, fua);
    }

    @Override
    public void flush() throws IOException {
      disk.flush();
    }

    @SuppressWarnings("unchecked")
    private static <T extends Throwable> RuntimeException sneaky(Throwable t) throws T {
      throw (T) t;
    }
  }

  @ParameterizedTest
  @ValueSource(strings = {"runtime", "error"})
  void aFailureInOneConnectionEndsThatConnectionOnly(String kind) throws Exception {
    Throwable failure = kind.equals("error") ? new StackOverflowError("simulated")
        : new IllegalStateException("simulated");
    ExportResolver two = new ExportResolver() {
      @Override
      public Optional<BlockDevice> openExport(String name) {
        return switch (name) {
          case "vm/disk0" -> Optional.of(disk);
          case "vm/boom" -> Optional.of(new Exploding(disk, failure));
          default -> Optional.empty();
        };
      }

      @Override
      public List<String> exportNames() {
        return List.of("vm/disk0", "vm/boom");
      }
    };
    start(10, Duration.ofSeconds(10), two);
    try (RawNbdClient healthy = RawNbdClient.go(server.port(), "vm/disk0");
        RawNbdClient doomed = RawNbdClient.go(server.port(), "vm/boom")) {
      doomed.request(0, CMD_READ, 0, 1 << 20);
      assertThat(doomed.closedByServer()).isTrue();

      assertThat(healthy.write(0, 0, 1 << 20, 0x33).error()).isZero();
      assertThat(healthy.read(0, 0, 1 << 20).data()).containsOnly((byte) 0x33);
      try (RawNbdClient next = RawNbdClient.go(server.port(), "vm/disk0")) {
        assertThat(next.read(0, 0, 4096).data()).containsOnly((byte) 0x33);
      }
    }
    await(() -> server.payloads().available() == BUDGET, Duration.ofSeconds(5),
        "every payload byte returned to the budget");
  }
}
