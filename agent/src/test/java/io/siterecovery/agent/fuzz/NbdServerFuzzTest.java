package io.siterecovery.agent.fuzz;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.fail;

import com.code_intelligence.jazzer.api.BugDetectors;
import com.code_intelligence.jazzer.api.SilentCloseable;
import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.ChangeTracker;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.nbd.BlockDevice;
import io.siterecovery.agent.nbd.ExportResolver;
import io.siterecovery.agent.nbd.NbdClient;
import io.siterecovery.agent.nbd.NbdServer;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * An NBD server on 127.0.0.1 over a small tracked disk, sent arbitrary bytes on a connection of
 * their own: from the start, or after a valid handshake. Afterwards a fresh, well-formed client
 * must still write and read its data back, the image must still have the export's size (no write
 * outside it), and the change log must still read cleanly (every record inside the disk). The
 * disk is tracked as a protected VM's disk is, so the tracker's own range check is fuzzed too.
 *
 * <p>Input: a mode byte (0: the bytes are the whole conversation; 1: they follow a client's
 * fixed-newstyle greeting and OPT_GO; 2: they follow the greeting and OPT_EXPORT_NAME; 3: after
 * OPT_GO, they are the numbers of well-formed requests, see {@link #requests}), then the bytes.
 */
class NbdServerFuzzTest {
  private static final String EXPORT = "vm/disk0";
  private static final int SIZE = 1 << 20;
  /** The change log is sealed, checked and dropped once it holds this much. */
  private static final long LOG_LIMIT = 1 << 20;

  // From the NBD protocol specification, not from the server's code.
  private static final long IHAVEOPT = 0x49484156454F5054L;
  private static final int CLIENT_FIXED_NEWSTYLE_NO_ZEROES = 3;
  private static final int OPT_EXPORT_NAME = 1;
  private static final int OPT_GO = 7;
  private static final int REQUEST_MAGIC = 0x25609513;
  private static final short CMD_READ = 0;
  private static final short CMD_WRITE = 1;
  private static final short CMD_DISC = 2;
  private static final short CMD_FLUSH = 3;
  private static final short CMD_TRIM = 4;
  private static final short CMD_WRITE_ZEROES = 6;
  private static final short FLAG_FUA = 1;
  private static final byte[] NAME = EXPORT.getBytes(StandardCharsets.UTF_8);
  /** A well-behaved client's greeting and OPT_GO (no information requests). */
  private static final byte[] GO = ByteBuffer.allocate(4 + 16 + 4 + NAME.length + 2)
      .putInt(CLIENT_FIXED_NEWSTYLE_NO_ZEROES)
      .putLong(IHAVEOPT).putInt(OPT_GO).putInt(4 + NAME.length + 2)
      .putInt(NAME.length).put(NAME).putShort((short) 0)
      .array();
  /** A well-behaved client's greeting and the older OPT_EXPORT_NAME. */
  private static final byte[] EXPORT_NAME = ByteBuffer.allocate(4 + 16 + NAME.length)
      .putInt(CLIENT_FIXED_NEWSTYLE_NO_ZEROES)
      .putLong(IHAVEOPT).putInt(OPT_EXPORT_NAME).putInt(NAME.length).put(NAME)
      .array();

  @TempDir Path dir;
  private Path image;
  private VirtualDisk disk;
  private ChangeTracker tracker;
  private NbdServer server;

  @BeforeEach
  void startServer() throws IOException {
    image = dir.resolve("disk0.img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(SIZE);
    }
    UUID id = UUID.randomUUID();
    disk = new VirtualDisk("disk0", id, image, SIZE);
    tracker = ChangeTracker.open(dir, "disk0", id, SIZE, 1);
    disk.setTracker(tracker);
    server = new NbdServer(new ExportResolver() {
      @Override
      public Optional<BlockDevice> openExport(String name) {
        return EXPORT.equals(name) ? Optional.of(disk) : Optional.empty();
      }

      @Override
      public List<String> exportNames() {
        return List.of(EXPORT);
      }
    }, new InetSocketAddress("127.0.0.1", 0));
  }

  @AfterEach
  void stopServer() throws IOException {
    server.close();
    tracker.close();
    disk.close();
  }

  @MethodSource("seeds")
  @DictionaryFile(resourcePath = "integers.dict")
  @FuzzTest(maxDuration = Fuzzing.BOUNDED_RUN)
  void fuzz(byte[] input) throws IOException {
    if (input.length == 0) {
      return;
    }
    byte[] rest = Arrays.copyOfRange(input, 1, input.length);
    byte[] conversation = switch (Math.floorMod(input[0], 4)) {
      case 1 -> Bytes.concat(GO, rest);
      case 2 -> Bytes.concat(EXPORT_NAME, rest);
      case 3 -> Bytes.concat(GO, requests(rest));
      default -> rest;
    };
    // Jazzer's SSRF detector refuses every connection unless told which ones are the test's own.
    try (SilentCloseable ours = BugDetectors.allowNetworkConnections(
        (host, port) -> port == server.port()
            && (host.equals("127.0.0.1") || host.equals("localhost")))) {
      converse(conversation);
      assertAFreshClientIsServed();
    }
    assertThat(Files.size(image)).as("image size").isEqualTo(SIZE);
    assertTheChangeLogReadsCleanly();
  }

  /** Sends everything, then reads until the server hangs up, as it must after our end of stream. */
  private void converse(byte[] bytes) throws IOException {
    try (Socket socket = new Socket("127.0.0.1", server.port())) {
      socket.setSoTimeout(5_000);
      try {
        socket.getOutputStream().write(bytes);
        socket.shutdownOutput();
      } catch (IOException hungUpOnUs) {
        // the server may close on the first bad byte, before we are done sending
      }
      InputStream in = socket.getInputStream();
      byte[] sink = new byte[1 << 16];
      try {
        while (in.read(sink) >= 0) {
          // replies, READ data included, are read only so that the server never blocks on them
        }
      } catch (SocketTimeoutException hung) {
        fail("the server neither answered nor hung up within 5 s after the end of the input");
      } catch (IOException reset) {
        // a reset instead of a clean close is a hang-up too
      }
    }
  }

  private void assertAFreshClientIsServed() throws IOException {
    byte[] block = new byte[4096];
    Arrays.fill(block, (byte) 0xC3);
    try (NbdClient client = new NbdClient("127.0.0.1", server.port(), EXPORT)) {
      assertThat(client.size()).isEqualTo(SIZE);
      client.write(SIZE - block.length, block, true);
      assertThat(client.read(SIZE - block.length, block.length)).isEqualTo(block);
    }
  }

  private void assertTheChangeLogReadsCleanly() throws IOException {
    Path active = dir.resolve(HrlFormat.fileName("disk0", tracker.activeGeneration()));
    HrlReader.Scan scan = HrlReader.scan(active);
    assertThat(scan.tornReason()).as("torn tail of the active log").isNull();
    if (scan.validEnd() > LOG_LIMIT) {
      long sealed = disk.withWritesHeld(tracker::swap);
      HrlReader.verifySealed(dir.resolve(HrlFormat.fileName("disk0", sealed)));
      tracker.deleteSealed(sealed);
    }
  }

  /**
   * Well-formed requests from 16 fuzzed bytes each (flags, type, offset, length; magic and handle
   * filled in), a WRITE followed by the data it declares when that is at most 64 KiB: the fuzzer's
   * bytes all go into the numbers the server must check.
   */
  private static byte[] requests(byte[] fields) {
    ByteBuffer in = ByteBuffer.wrap(fields);
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    while (in.remaining() >= 16) {
      short flags = in.getShort();
      short type = in.getShort();
      long offset = in.getLong();
      int length = in.getInt();
      boolean withData = type == CMD_WRITE && length >= 0 && length <= 64 << 10;
      out.writeBytes(request(type, flags, offset, length, withData ? length : 0));
    }
    return out.toByteArray();
  }

  /** A request header followed by {@code zeroes} data bytes. */
  private static byte[] request(short type, short flags, long offset, int length, int zeroes) {
    return ByteBuffer.allocate(28 + zeroes).putInt(REQUEST_MAGIC).putShort(flags).putShort(type)
        .putLong(42).putLong(offset).putInt(length).array();
  }

  /**
   * Three requests as numbers; every command once after OPT_GO; a read after OPT_EXPORT_NAME; the
   * whole handshake raw.
   */
  static Stream<byte[]> seeds() {
    byte[] commands = Bytes.concat(
        request(CMD_WRITE, (short) 0, 4096, 512, 512),
        request(CMD_READ, (short) 0, 4096, 512, 0),
        request(CMD_WRITE_ZEROES, FLAG_FUA, 8192, 4096, 0),
        request(CMD_TRIM, (short) 0, SIZE - 4096, 4096, 0),
        request(CMD_FLUSH, (short) 0, 0, 0, 0),
        request(CMD_DISC, (short) 0, 0, 0, 0));
    ByteBuffer fields = ByteBuffer.allocate(3 * 16)
        .putShort((short) 0).putShort(CMD_WRITE).putLong(SIZE - 512).putInt(512)
        .putShort(FLAG_FUA).putShort(CMD_WRITE_ZEROES).putLong(0).putInt(4096)
        .putShort((short) 0).putShort(CMD_READ).putLong(SIZE - 512).putInt(512);
    return Stream.of(
        Bytes.concat(new byte[] {3}, fields.array()),
        Bytes.concat(new byte[] {1}, commands),
        Bytes.concat(new byte[] {2}, request(CMD_READ, (short) 0, SIZE - 512, 512, 0)),
        Bytes.concat(new byte[] {0}, GO, commands));
  }
}
