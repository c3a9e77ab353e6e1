package io.siterecovery.agent.fuzz;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.transport.RangeStream;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.UUID;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The replica's range-frame receiver over arbitrary bytes into a 64 KiB disk. It must do what a
 * reference reading of the wire format does: write every frame up to the first bad one, and then
 * refuse the stream with TRANSFER_CORRUPT (nothing else escapes); the image never changes size,
 * so no write lands outside the disk.
 *
 * <p>Input: a mode byte, then the stream as a peer would send it (mode even), or only its frame
 * headers (mode odd: the data is filled in, see {@link #withData}).
 */
class RangeFramesFuzzTest {
  private static final int DISK_SIZE = 64 << 10;
  private static final int FRAME_HEADER = 12;

  @TempDir Path dir;
  private Path image;
  private VirtualDisk disk;

  @BeforeEach
  void createDisk() throws IOException {
    image = dir.resolve("disk0.img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(DISK_SIZE);
    }
    disk = new VirtualDisk("disk0", UUID.randomUUID(), image, DISK_SIZE);
  }

  @AfterEach
  void closeDisk() throws IOException {
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
    byte[] stream = (input[0] & 1) == 1 ? withData(rest) : rest;
    disk.writeAt(0, ByteBuffer.allocate(DISK_SIZE)); // every input starts from a zeroed disk
    Expected expected = Expected.of(stream);

    Long written = null;
    try {
      written = RangeStream.receive(new ByteArrayInputStream(stream), disk);
    } catch (AgentException e) {
      assertThat(e.code()).as(e.getMessage()).isEqualTo(ErrorCode.TRANSFER_CORRUPT);
    }

    assertThat(Files.size(image)).as("image size").isEqualTo(DISK_SIZE);
    assertThat(written).as("bytes written, or null when refused").isEqualTo(expected.written());
    assertThat(Files.readAllBytes(image)).as("disk contents").isEqualTo(expected.contents());
  }

  /**
   * What the stream should do to a zeroed disk, read straight from the format: frames of a
   * big-endian u64 offset, u32 length and that many data bytes, each inside the disk.
   * {@code written} is null when the stream must be refused.
   */
  private record Expected(byte[] contents, Long written) {
    static Expected of(byte[] stream) {
      byte[] contents = new byte[DISK_SIZE];
      ByteBuffer in = ByteBuffer.wrap(stream);
      long written = 0;
      while (in.hasRemaining()) {
        if (in.remaining() < FRAME_HEADER) {
          return new Expected(contents, null);
        }
        long offset = in.getLong();
        long length = in.getInt();
        // the sum cannot overflow once the offset is known to lie within the small disk
        boolean inside = offset >= 0 && length >= 0 && offset <= DISK_SIZE
            && offset + length <= DISK_SIZE;
        if (!inside || in.remaining() < length) {
          return new Expected(contents, null);
        }
        in.get(contents, (int) offset, (int) length);
        written += length;
      }
      return new Expected(contents, written);
    }
  }

  /**
   * Frame headers only, each followed by as many data bytes as it declares when that is at most
   * 64 KiB: the fuzzer's bytes all go into offsets and lengths, where the arithmetic is.
   */
  private static byte[] withData(byte[] headers) {
    ByteBuffer in = ByteBuffer.wrap(headers);
    ByteArrayOutputStream stream = new ByteArrayOutputStream();
    while (in.remaining() >= FRAME_HEADER) {
      byte[] header = new byte[FRAME_HEADER];
      in.get(header);
      stream.writeBytes(header);
      int length = ByteBuffer.wrap(header).getInt(8);
      if (length >= 0 && length <= DISK_SIZE) {
        for (int i = 0; i < length; i++) {
          stream.write(i * 31 + 7); // not zero, so a frame that lands leaves a mark
        }
      }
    }
    stream.writeBytes(Arrays.copyOfRange(headers, in.position(), headers.length));
    return stream.toByteArray();
  }

  /**
   * Raw: two good frames (one ending at the disk's last byte), and a stream cut inside a header.
   * Headers only: the same two frames.
   */
  static Stream<byte[]> seeds() {
    ByteBuffer good = ByteBuffer.allocate(1 + 2 * FRAME_HEADER + 8 + 4).put((byte) 0)
        .putLong(512).putInt(8).put(new byte[] {1, 2, 3, 4, 5, 6, 7, 8})
        .putLong(DISK_SIZE - 4).putInt(4).put(new byte[] {9, 9, 9, 9});
    ByteBuffer headers = ByteBuffer.allocate(1 + 2 * FRAME_HEADER).put((byte) 1)
        .putLong(512).putInt(8)
        .putLong(DISK_SIZE - 4).putInt(4);
    return Stream.of(good.array(), new byte[] {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, headers.array());
  }
}
