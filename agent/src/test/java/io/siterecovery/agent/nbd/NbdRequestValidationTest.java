package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.nbd.NbdProtocol.*;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.HrlFile;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Requests a well-behaved client never sends are refused before the disk or its change log sees
 * them, and the connection goes on working. The VM is protected, so every write that reaches the
 * disk is recorded in its active .hrl; a refused one must leave no trace there.
 */
class NbdRequestValidationTest {
  private static final long SIZE = 16L << 20;
  private static final long OVERFLOWING_OFFSET = 0x7FFFFFFFFFFFF000L;
  private static final long HUGE = 64L << 20; // twice the largest payload we accept

  @TempDir Path tmp;
  private AgentPair agents;
  private Path vmDir;
  private int port;

  @BeforeEach
  void protectVm() {
    try {
      agents = AgentPair.start(tmp);
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
    agents.createProtected("web01", SIZE);
    vmDir = agents.primary.diskImage("web01", "disk0").getParent();
    port = agents.primary.nbdPort();
    assertThat(hrlLogs()).as("an active change log").isNotEmpty();
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  @Test
  void anOverflowingWriteIsRefusedAndNeverReachesTheChangeLog() throws IOException {
    try (RawNbdClient nbd = RawNbdClient.go(port, "web01/disk0")) {
      assertThat(nbd.command(0, CMD_FLUSH, 0, 0).error()).isZero();
      Map<Path, byte[]> before = vmFiles();

      // offset + length overflows a long: the old range check took this for a write inside the disk
      RawNbdClient.Reply refused = nbd.write(0, OVERFLOWING_OFFSET, 8192, 0xee);
      assertThat(nbd.command(0, CMD_FLUSH, 0, 0).error()).isZero();
      assertSameFiles(before, vmFiles());
      assertThat(refused.error()).isEqualTo(ENOSPC);

      // the same connection still works, and a good write is logged as usual
      assertThat(nbd.write(0, 4096, 4096, 0xab).error()).isZero();
      assertThat(nbd.read(0, 4096, 4096).data()).containsOnly((byte) 0xab);
    }
    List<HrlFile.Entry> entries = HrlFile.entries(hrlLogs().get(hrlLogs().size() - 1));
    assertThat(entries).hasSize(1);
    assertThat(entries.get(0).offset()).isEqualTo(4096);
    assertThat(entries.get(0).isWriteOf(0xab)).isTrue();
  }

  static Stream<Arguments> malformedRequests() {
    int unknownFlag = 1 << 5;
    return Stream.of(
        bad("write at an offset of 2^63 or more", CMD_WRITE, 0, 1L << 63 | 4096, 4096, ENOSPC),
        bad("write across the end", CMD_WRITE, 0, SIZE - 4096, 8192, ENOSPC),
        bad("write starting past the end", CMD_WRITE, 0, SIZE + 4096, 4096, ENOSPC),
        bad("write longer than the largest payload", CMD_WRITE, 0, 0, HUGE, EINVAL),
        bad("write with an unknown flag", CMD_WRITE, unknownFlag, 0, 4096, EINVAL),
        bad("write with NO_HOLE", CMD_WRITE, CMD_FLAG_NO_HOLE, 0, 4096, EINVAL),
        bad("write with DF", CMD_WRITE, CMD_FLAG_DF, 0, 4096, EINVAL),
        bad("write zeroes overflowing", CMD_WRITE_ZEROES, 0, OVERFLOWING_OFFSET, 8192, ENOSPC),
        bad("write zeroes with FAST_ZERO, never advertised", CMD_WRITE_ZEROES,
            CMD_FLAG_FAST_ZERO, 0, 4096, EINVAL),
        bad("write zeroes with REQ_ONE", CMD_WRITE_ZEROES, CMD_FLAG_REQ_ONE, 0, 4096, EINVAL),
        bad("trim overflowing", CMD_TRIM, 0, OVERFLOWING_OFFSET, 8192, EINVAL),
        bad("trim with NO_HOLE", CMD_TRIM, CMD_FLAG_NO_HOLE, 0, 4096, EINVAL),
        bad("read overflowing", CMD_READ, 0, OVERFLOWING_OFFSET, 8192, EINVAL),
        bad("read longer than the largest payload", CMD_READ, 0, 0, HUGE, EINVAL),
        bad("read of the largest 32-bit length", CMD_READ, 0, 0, 0xFFFFFFFFL, EINVAL),
        bad("read with DF, never advertised", CMD_READ, CMD_FLAG_DF, 0, 4096, EINVAL),
        bad("flush with an offset", CMD_FLUSH, 0, 4096, 0, EINVAL),
        bad("unknown command", 9, 0, 0, 0, EINVAL));
  }

  private static Arguments bad(String what, int type, int flags, long offset, long length,
      int expectedError) {
    return Arguments.of(what, type, flags, offset, length, expectedError);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("malformedRequests")
  void aMalformedRequestIsRefusedWithoutTouchingDiskOrLog(String what, int type, int flags,
      long offset, long length, int expectedError) throws IOException {
    try (RawNbdClient nbd = RawNbdClient.go(port, "web01/disk0")) {
      Map<Path, byte[]> before = vmFiles();

      long handle = nbd.request(flags, type, offset, length);
      if (type == CMD_WRITE) {
        nbd.payload(length, 0xee); // the server reads past the payload of a refused write
      }
      RawNbdClient.Reply reply = nbd.reply(0);
      assertThat(reply.handle()).isEqualTo(handle);
      assertThat(reply.error()).as(what).isEqualTo(expectedError);

      assertThat(nbd.command(0, CMD_FLUSH, 0, 0).error()).isZero();
      assertSameFiles(before, vmFiles());
      assertThat(nbd.write(CMD_FLAG_FUA, 8192, 4096, 0x5a).error()).isZero();
      assertThat(nbd.read(0, 8192, 4096).data()).containsOnly((byte) 0x5a);
    }
  }

  @Test
  void zeroLengthRequestsSucceedAndChangeNothing() throws IOException {
    try (RawNbdClient nbd = RawNbdClient.go(port, "web01/disk0")) {
      Map<Path, byte[]> before = vmFiles();
      assertThat(nbd.write(0, 4096, 0, 0).error()).isZero();
      assertThat(nbd.write(0, SIZE, 0, 0).error()).as("at the very end").isZero();
      assertThat(nbd.read(0, 0, 0).error()).isZero();
      assertThat(nbd.command(0, CMD_TRIM, 0, 0).error()).isZero();
      assertThat(nbd.command(0, CMD_WRITE_ZEROES, 0, 0).error()).isZero();
      assertThat(nbd.write(0, SIZE + 4096, 0, 0).error()).as("past the end").isEqualTo(ENOSPC);
      assertThat(nbd.command(0, CMD_FLUSH, 0, 0).error()).isZero();
      assertSameFiles(before, vmFiles());
    }
  }

  @Test
  void aReadOnlyExportRefusesChangesWithEperm() throws IOException {
    VirtualDisk disk = agents.primary.vms().get("web01").disk("disk0");
    ExportResolver readOnly = new ExportResolver() {
      @Override
      public Optional<BlockDevice> openExport(String name) {
        return name.equals("ro") ? Optional.of(new ReadOnlyView(disk)) : Optional.empty();
      }

      @Override
      public List<String> exportNames() {
        return List.of("ro");
      }
    };
    try (NbdServer server = new NbdServer(readOnly, new InetSocketAddress("127.0.0.1", 0));
        RawNbdClient nbd = RawNbdClient.go(server.port(), "ro")) {
      assertThat(nbd.transmissionFlags())
          .isEqualTo(TFLAG_HAS_FLAGS | TFLAG_READ_ONLY | TFLAG_SEND_FLUSH | TFLAG_CAN_MULTI_CONN);
      Map<Path, byte[]> before = vmFiles();

      assertThat(nbd.write(0, 0, 4096, 0xee).error()).isEqualTo(EPERM);
      assertThat(nbd.command(0, CMD_TRIM, 0, 4096).error()).isEqualTo(EPERM);
      assertThat(nbd.command(0, CMD_WRITE_ZEROES, 0, 4096).error()).isEqualTo(EPERM);
      assertThat(nbd.write(CMD_FLAG_FUA, 0, 4096, 0xee).error())
          .as("FUA is not advertised on a read-only export").isEqualTo(EINVAL);

      assertThat(nbd.command(0, CMD_FLUSH, 0, 0).error()).isZero();
      assertThat(nbd.read(0, 0, 4096).error()).isZero();
      assertSameFiles(before, vmFiles());
    }
  }

  /** The VM's disk seen through an export that says it is read-only. */
  private record ReadOnlyView(VirtualDisk disk) implements BlockDevice {
    @Override
    public long size() {
      return disk.size();
    }

    @Override
    public boolean readOnly() {
      return true;
    }

    @Override
    public void read(long offset, ByteBuffer dst) throws IOException {
      disk.read(offset, dst);
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
  }

  private List<Path> hrlLogs() {
    try (Stream<Path> files = Files.list(vmDir)) {
      return files.filter(p -> p.toString().endsWith(".hrl")).sorted().toList();
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  /** Every file of the VM (image, change logs, metadata) and its bytes. */
  private Map<Path, byte[]> vmFiles() throws IOException {
    Map<Path, byte[]> files = new TreeMap<>();
    try (Stream<Path> list = Files.list(vmDir)) {
      for (Path p : list.filter(Files::isRegularFile).toList()) {
        files.put(p.getFileName(), Files.readAllBytes(p));
      }
    }
    return files;
  }

  private static void assertSameFiles(Map<Path, byte[]> before, Map<Path, byte[]> after) {
    assertThat(after.keySet()).isEqualTo(before.keySet());
    for (Path name : before.keySet()) {
      // Arrays.mismatch rather than isEqualTo: a failure names the first differing byte and does
      // not print 16 MiB of image
      assertThat(Arrays.mismatch(before.get(name), after.get(name)))
          .as("first changed byte of %s (%d bytes before, %d after)", name,
              before.get(name).length, after.get(name).length)
          .isEqualTo(-1);
    }
  }
}
