package io.siterecovery.agent.fuzz;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.code_intelligence.jazzer.junit.DictionaryFile;
import com.code_intelligence.jazzer.junit.FuzzTest;
import io.siterecovery.agent.hrl.HrlCorruptException;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * HrlReader over arbitrary file bytes: it either refuses the header with HrlCorruptException or
 * reports a scan whose numbers are consistent with the file, its verification agrees with the
 * scan, and every record it hands out lies inside the disk its header names.
 *
 * <p>Input: one mode byte (odd: forge a sealed log from the rest, every checksum right, see
 * {@link HrlForgery}), then the file.
 */
class HrlReaderFuzzTest {
  @TempDir Path dir;

  @MethodSource("seeds")
  @DictionaryFile(resourcePath = "integers.dict")
  @FuzzTest(maxDuration = Fuzzing.BOUNDED_RUN)
  void fuzz(byte[] input) throws IOException {
    if (input.length == 0) {
      return;
    }
    byte[] bytes = Arrays.copyOfRange(input, 1, input.length);
    if ((input[0] & 1) == 1) {
      bytes = HrlForgery.sealed(bytes);
    }
    Path log = Files.write(dir.resolve("fuzzed.hrl"), bytes);

    HrlReader.Scan scan;
    try {
      scan = HrlReader.scan(log);
    } catch (HrlCorruptException badHeader) {
      // only the header can fail a scan: every later problem is a torn tail
      assertThatThrownBy(() -> HrlReader.verifySealed(log)).isInstanceOf(HrlCorruptException.class);
      return;
    }
    assertConsistent(scan, bytes.length);
    if (scan.sealed()) {
      SealedLogs.assertRecordsInsideTheDisk(log, scan);
    } else {
      assertThatThrownBy(() -> HrlReader.verifySealed(log))
          .isInstanceOf(HrlCorruptException.class).hasMessageContaining("not a sealed log");
    }
  }

  private static void assertConsistent(HrlReader.Scan scan, long size) {
    assertThat(scan.validEnd()).isBetween((long) HrlFormat.HEADER_SIZE, size);
    assertThat(scan.records()).isNotNegative();
    assertThat(scan.dataBytes()).isBetween(0L, scan.validEnd());
    assertThat(scan.records() * HrlFormat.RECORD_HEADER_SIZE + scan.dataBytes())
        .isEqualTo(scan.validEnd() - HrlFormat.HEADER_SIZE);
    if (scan.sealed()) {
      assertThat(scan.tornReason()).isNull();
      assertThat(scan.validEnd() + HrlFormat.TRAILER_SIZE).isEqualTo(size);
    } else if (scan.tornReason() == null) {
      assertThat(scan.validEnd()).as("a clean end is the end of the file").isEqualTo(size);
    }
  }

  /** A sealed and an active log, each as it is and as the forging mode would take it. */
  static Stream<byte[]> seeds() throws IOException {
    byte[] sealed = SampleLog.bytes(true);
    byte[] active = SampleLog.bytes(false);
    return Stream.of(Bytes.concat(new byte[] {0}, sealed),
        Bytes.concat(new byte[] {1}, sealed), Bytes.concat(new byte[] {0}, active),
        Bytes.concat(new byte[] {1}, active));
  }
}
