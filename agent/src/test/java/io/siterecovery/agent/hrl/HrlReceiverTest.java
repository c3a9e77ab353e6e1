package io.siterecovery.agent.hrl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Random;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Receiving a log checks it as it streams: the file gets exactly the bytes sent, and a log that
 * {@link HrlReader#verifySealed} would refuse is refused on arrival, whatever the read sizes.
 */
class HrlReceiverTest {
  private static final UUID DISK = UUID.fromString("7e1c2d3e-4f50-6172-8394-a5b6c7d8e9f0");
  private static final long DISK_SIZE = 64L << 20;

  @TempDir Path dir;

  /** Records larger and smaller than the receiver's 1 MiB chunk, so records straddle chunks. */
  private byte[] sealedLog(long generation) throws IOException {
    Path path = dir.resolve("source-" + generation + ".hrl");
    Random random = new Random(generation);
    try (HrlWriter w = HrlWriter.create(path, new HrlHeader(DISK, generation, DISK_SIZE, 1L))) {
      for (int size : new int[] {4096, (3 << 20) + 17, 1, 65536, (1 << 20) - 40, 700_000}) {
        byte[] data = new byte[size];
        random.nextBytes(data);
        w.appendWrite(random.nextInt((int) (DISK_SIZE - size)), ByteBuffer.wrap(data));
        w.appendZero(8192, 4096);
      }
      w.appendWrite(0, ByteBuffer.allocate(0));
      w.seal();
    }
    return Files.readAllBytes(path);
  }

  /** A stream that hands out at most {@code step} bytes per read, as a network would. */
  private static InputStream trickle(byte[] bytes, int step) {
    return new ByteArrayInputStream(bytes) {
      @Override
      public synchronized int read(byte[] b, int off, int len) {
        return super.read(b, off, Math.min(len, step));
      }
    };
  }

  private HrlHeader receive(InputStream in, Path target) throws IOException {
    try (FileChannel out = FileChannel.open(target, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      return HrlReceiver.receive(in, out);
    }
  }

  @Test
  void aSoundLogArrivesByteForByteAndVerifies() throws IOException {
    byte[] log = sealedLog(5);
    for (int step : new int[] {1 << 20, 8191, 33}) {
      Path target = dir.resolve("received-" + step + ".hrl");
      HrlHeader header = receive(trickle(log, step), target);
      assertThat(header.generation()).isEqualTo(5);
      assertThat(header.diskId()).isEqualTo(DISK);
      assertThat(Files.readAllBytes(target)).isEqualTo(log);
      assertThat(HrlReader.verifySealed(target).records()).isEqualTo(13);
    }
  }

  @Test
  void everyDamagedByteOfASmallLogIsRefusedOnArrival() throws IOException {
    Path source = dir.resolve("small.hrl");
    try (HrlWriter w = HrlWriter.create(source, new HrlHeader(DISK, 3, DISK_SIZE, 1L))) {
      w.appendWrite(512, ByteBuffer.wrap(new byte[] {1, 2, 3, 4, 5, 6, 7, 8, 9}));
      w.appendZero(0, 512);
      w.seal();
    }
    byte[] log = Files.readAllBytes(source);
    Path target = dir.resolve("received.hrl");
    for (int i = 0; i < log.length; i++) {
      byte[] damaged = log.clone();
      damaged[i] ^= 0x01;
      int at = i;
      assertThatThrownBy(() -> receive(trickle(damaged, 7), target))
          .as("flipped byte %d of %d", at, log.length)
          .isInstanceOf(HrlCorruptException.class);
    }
  }

  @Test
  void aDamagedByteDeepInsideALargeRecordIsRefused() throws IOException {
    byte[] damaged = sealedLog(6);
    damaged[(2 << 20) + 12345] ^= 0x40;
    assertThatThrownBy(() -> receive(new ByteArrayInputStream(damaged), dir.resolve("r.hrl")))
        .isInstanceOf(HrlCorruptException.class)
        .hasMessageContaining("checksum mismatch");
  }

  @Test
  void aCutStreamAndBytesAfterTheTrailerAreRefused() throws IOException {
    byte[] log = sealedLog(7);
    for (int cut : new int[] {0, 10, 64, 100, 2 << 20, log.length - 1}) {
      byte[] head = Arrays.copyOf(log, cut);
      assertThatThrownBy(() -> receive(new ByteArrayInputStream(head), dir.resolve("cut.hrl")))
          .as("stream cut after %d of %d bytes", cut, log.length)
          .isInstanceOf(HrlCorruptException.class);
    }
    byte[] longer = Arrays.copyOf(log, log.length + 1);
    assertThatThrownBy(() -> receive(new ByteArrayInputStream(longer), dir.resolve("long.hrl")))
        .isInstanceOf(HrlCorruptException.class)
        .hasMessageContaining("after the trailer");
  }
}
