package io.siterecovery.agent.hrl;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The tracker's log life cycle: swap and seal, and recovery of the active log after a crash. */
class ChangeTrackerTest {
  private static final UUID DISK = UUID.randomUUID();
  private static final long SIZE = 8L << 20;

  @TempDir Path dir;

  private ChangeTracker open() throws IOException {
    return ChangeTracker.open(dir, "disk0", DISK, SIZE, 1);
  }

  private static ByteBuffer filled(int length, int value) {
    byte[] b = new byte[length];
    java.util.Arrays.fill(b, (byte) value);
    return ByteBuffer.wrap(b);
  }

  private Path log(long generation) {
    return dir.resolve(HrlFormat.fileName("disk0", generation));
  }

  private static List<HrlRecord> records(Path sealed) throws IOException {
    List<HrlRecord> out = new ArrayList<>();
    HrlReader.applySealed(sealed, r -> {
      ByteBuffer copy = null;
      if (r.data() != null) {
        copy = ByteBuffer.allocate(r.data().remaining()).put(r.data().duplicate()).flip();
      }
      out.add(new HrlRecord(r.type(), r.offset(), r.length(), copy));
    });
    return out;
  }

  @Test
  void swapSealsTheActiveLogAndOpensTheNextGeneration() throws IOException {
    ChangeTracker t = open();
    assertThat(t.activeGeneration()).isEqualTo(1);
    assertThat(Files.size(log(1))).isEqualTo(HrlFormat.HEADER_SIZE);
    t.recordWrite(0, filled(4096, 0xaa));
    t.recordZero(4096, 4096);
    assertThat(t.activeRecords()).isEqualTo(2);

    assertThat(t.swap()).isEqualTo(1);
    assertThat(t.activeGeneration()).isEqualTo(2);
    assertThat(t.activeRecords()).isZero();
    assertThat(t.sealedLogs()).extracting(ChangeTracker.SealedLog::generation).containsExactly(1L);
    assertThat(t.sealedLogs().get(0).sizeBytes()).isEqualTo(Files.size(log(1)));
    assertThat(HrlReader.verifySealed(log(1)).records()).isEqualTo(2);
    assertThat(HrlReader.scan(log(2)).header().generation()).isEqualTo(2);
    assertThat(t.pendingBytes()).isEqualTo(Files.size(log(1)) + HrlFormat.HEADER_SIZE);

    t.swap();
    assertThat(t.sealedLogs()).extracting(ChangeTracker.SealedLog::generation)
        .containsExactly(1L, 2L);
    assertThatThrownBy(() -> t.deleteSealed(3)).isInstanceOf(IllegalArgumentException.class);
    t.deleteSealed(1);
    assertThat(t.sealedLogs()).extracting(ChangeTracker.SealedLog::generation).containsExactly(2L);
    assertThat(log(1)).doesNotExist();

    t.stop();
    try (var files = Files.list(dir)) {
      assertThat(files.toList()).isEmpty();
    }
  }

  @Test
  void reopeningResumesTheUnsealedActiveLog() throws IOException {
    ChangeTracker t = open();
    t.recordWrite(512, filled(1000, 1));
    t.force();
    t.close();

    ChangeTracker again = open();
    assertThat(again.activeGeneration()).isEqualTo(1);
    assertThat(again.activeRecords()).isEqualTo(1);
    again.recordWrite(2048, filled(10, 2));
    again.swap();
    List<HrlRecord> records = records(log(1));
    assertThat(records).extracting(HrlRecord::offset).containsExactly(512L, 2048L);
    assertThat(records.get(1).data()).isEqualTo(filled(10, 2));
  }

  @Test
  void reopeningAfterASealedLastLogStartsTheNextGeneration() throws IOException {
    ChangeTracker t = open();
    t.recordWrite(0, filled(512, 1));
    t.swap();
    t.close();
    Files.delete(log(2)); // as if the agent died between sealing 1 and creating 2

    ChangeTracker again = open();
    assertThat(again.activeGeneration()).isEqualTo(2);
    assertThat(again.sealedLogs()).extracting(ChangeTracker.SealedLog::generation)
        .containsExactly(1L);
  }

  @ParameterizedTest
  @ValueSource(ints = {0, 1, 20, HrlFormat.HEADER_SIZE - 1})
  void aLogCutInsideItsHeaderByACrashDuringSwapIsRecreated(int length) throws IOException {
    ChangeTracker t = open();
    t.recordWrite(0, filled(512, 1));
    t.swap();
    t.close();
    // the agent died after creating generation 2 and before its header was complete
    byte[] header = Files.readAllBytes(log(2));
    Files.write(log(2), java.util.Arrays.copyOf(header, length));

    ChangeTracker again = open();
    assertThat(again.activeGeneration()).isEqualTo(2);
    assertThat(again.activeRecords()).isZero();
    assertThat(Files.size(log(2))).isEqualTo(HrlFormat.HEADER_SIZE);
    assertThat(HrlReader.verifySealed(log(1)).records()).isEqualTo(1);
    again.recordWrite(4096, filled(512, 2));
    again.swap();
    assertThat(records(log(2))).extracting(HrlRecord::offset).containsExactly(4096L);
  }

  @Test
  void aLogOfAnotherDiskIsRefused() throws IOException {
    open().close();
    assertThatThrownBy(() -> ChangeTracker.open(dir, "disk0", UUID.randomUUID(), SIZE, 1))
        .isInstanceOf(HrlCorruptException.class).hasMessageContaining("another disk");
  }

  @ParameterizedTest
  @ValueSource(strings = {"garbage", "partial-record", "partial-header", "bad-trailer"})
  void aTornTailIsCutOffAndTheValidRecordsAreKept(String tail) throws IOException {
    ChangeTracker t = open();
    t.recordWrite(0, filled(4096, 0x11));
    t.recordZero(8192, 4096);
    t.recordWrite(65536, filled(777, 0x22));
    t.force();
    t.close();
    long valid = Files.size(log(1));

    byte[] bytes = switch (tail) {
      case "garbage" -> {
        byte[] g = new byte[100];
        new java.util.Random(3).nextBytes(g);
        yield g;
      }
      case "partial-record" -> HrlFormatTest.withTail(
          HrlFormatTest.recordHeader(HrlFormat.TYPE_WRITE, 0, 4096, 0), new byte[1000]);
      case "partial-header" -> java.util.Arrays.copyOf(
          HrlFormatTest.recordHeader(HrlFormat.TYPE_WRITE, 0, 4096, 0), 17);
      case "bad-trailer" -> {
        byte[] trailer = new byte[HrlFormat.TRAILER_SIZE];
        ByteBuffer.wrap(trailer).order(java.nio.ByteOrder.LITTLE_ENDIAN)
            .putInt(0, HrlFormat.TRAILER_MAGIC).putLong(8, 3);
        yield trailer;
      }
      default -> throw new IllegalArgumentException(tail);
    };
    Files.write(log(1), bytes, StandardOpenOption.APPEND);

    ChangeTracker again = open();
    assertThat(Files.size(log(1))).as("truncated to the valid records").isEqualTo(valid);
    assertThat(again.activeGeneration()).isEqualTo(1);
    assertThat(again.activeRecords()).isEqualTo(3);
    again.recordWrite(1 << 20, filled(4096, 0x33));
    again.swap();
    List<HrlRecord> records = records(log(1));
    assertThat(records).extracting(HrlRecord::offset).containsExactly(0L, 8192L, 65536L, 1L << 20);
    assertThat(records.get(2).data()).isEqualTo(filled(777, 0x22));
    assertThat(records.get(3).data()).isEqualTo(filled(4096, 0x33));
  }

  /**
   * A swap that sealed the active log but could not create the next one (ENOSPC on the source's
   * data directory, here a directory in the way) must not leave the tracker holding the sealed,
   * closed log: the writes fail while the next log cannot be made, then work again, and both
   * logs verify. Before, every later write and swap failed with ClosedChannelException until the
   * agent restarted (found by chaos scenario source-disk-full).
   */
  @Test
  void aSwapThatCouldNotCreateTheNextLogRecoversOnceItCan() throws IOException {
    ChangeTracker t = open();
    t.recordWrite(0, filled(4096, 0x11));
    Path inTheWay = Files.createDirectories(log(2));
    Files.writeString(inTheWay.resolve("x"), "x");

    assertThatThrownBy(t::swap).isInstanceOf(IOException.class);
    assertThat(HrlReader.verifySealed(log(1)).records()).isEqualTo(1);
    assertThatThrownBy(() -> t.recordWrite(4096, filled(4096, 0x22)))
        .isInstanceOf(IOException.class);
    t.force(); // nothing unsealed to make durable

    Files.delete(inTheWay.resolve("x"));
    Files.delete(inTheWay);
    t.recordWrite(4096, filled(4096, 0x22));
    assertThat(t.activeGeneration()).isEqualTo(2);
    assertThat(t.sealedLogs()).extracting(ChangeTracker.SealedLog::generation).containsExactly(1L);
    assertThat(t.swap()).isEqualTo(2);
    assertThat(records(log(1))).extracting(HrlRecord::offset).containsExactly(0L);
    assertThat(records(log(2))).extracting(HrlRecord::offset).containsExactly(4096L);
    assertThat(t.activeGeneration()).isEqualTo(3);
  }
}
