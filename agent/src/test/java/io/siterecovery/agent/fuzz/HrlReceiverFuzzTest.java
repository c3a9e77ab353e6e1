package io.siterecovery.agent.fuzz;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.siterecovery.agent.hrl.HrlCorruptException;
import io.siterecovery.agent.hrl.HrlHeader;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.hrl.HrlReceiver;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * HrlReceiver over an arbitrary stream, delivered in reads of a fuzzed size: it accepts exactly the
 * logs that HrlReader.verifySealed accepts (with the same header), refuses the others with
 * HrlCorruptException only, the file it writes is always a prefix of what arrived (all of it
 * when accepted), and every record it lets in lies inside the disk.
 *
 * <p>Input: a mode byte (odd: forge a sealed log from the rest, every checksum right, see
 * {@link HrlForgery}), a byte for the read size (1 to 256 bytes), then the stream.
 */
class HrlReceiverFuzzTest {
  @TempDir Path dir;

  @MethodSource("seeds")
  @DictionaryFile(resourcePath = "integers.dict")
  @FuzzTest(maxDuration = Fuzzing.BOUNDED_RUN)
  void fuzz(byte[] input) throws IOException {
    if (input.length < 2) {
      return;
    }
    byte[] stream = Arrays.copyOfRange(input, 2, input.length);
    if ((input[0] & 1) == 1) {
      stream = HrlForgery.sealed(stream);
    }
    int step = (input[1] & 0xff) + 1;
    Path received = dir.resolve("received.hrl");

    HrlHeader header = null;
    HrlCorruptException refusal = null;
    try (FileChannel out = FileChannel.open(received, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      header = HrlReceiver.receive(trickle(stream, step), out);
    } catch (HrlCorruptException e) {
      refusal = e;
    }

    byte[] written = Files.readAllBytes(received);
    assertThat(written.length).as("bytes kept").isLessThanOrEqualTo(stream.length);
    assertThat(Arrays.copyOf(stream, written.length)).as("bytes kept").isEqualTo(written);
    Path sent = Files.write(dir.resolve("sent.hrl"), stream);
    HrlHeader verified = verifiedHeader(sent);
    if (refusal == null) {
      assertThat(written).as("bytes kept").hasSameSizeAs(stream);
      assertThat(verified).as("HrlReader's verdict on a log the receiver accepted")
          .isEqualTo(header);
      // the differential above cannot see a rule both get wrong: check what was let in
      SealedLogs.assertRecordsInsideTheDisk(received, HrlReader.verifySealed(received));
    } else {
      assertThat(verified).as("HrlReader's verdict on a log the receiver refused ("
          + refusal.getMessage() + ")").isNull();
    }
  }

  /** The header of a log that verifies as sealed, or null. */
  private static HrlHeader verifiedHeader(Path log) throws IOException {
    try {
      return HrlReader.verifySealed(log).header();
    } catch (HrlCorruptException refused) {
      return null;
    }
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

  /** A sealed log read in 7-byte steps as it is, and in 256-byte steps as forged. */
  static Stream<byte[]> seeds() throws IOException {
    byte[] sealed = SampleLog.bytes(true);
    return Stream.of(Bytes.concat(new byte[] {0, 6}, sealed),
        Bytes.concat(new byte[] {1, (byte) 255}, sealed));
  }
}
