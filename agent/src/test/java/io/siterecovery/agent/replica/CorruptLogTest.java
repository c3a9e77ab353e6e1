package io.siterecovery.agent.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentMessages.ApplyRequest;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.testing.AgentPair;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** A log with a bad checksum is never applied, whether it broke in transit, at rest or at home. */
class CorruptLogTest {
  private static final long SIZE = 16L << 20;
  private static final int DATA = 64 << 10;

  @TempDir Path tmp;
  private AgentPair agents;
  private VirtualDisk source;
  private Path incoming;
  private Path replicaImage;
  private byte[] replicaBefore;

  @BeforeEach
  void protectAndSeal() throws IOException {
    agents = AgentPair.start(tmp);
    agents.createProtected("web01", SIZE);
    agents.initialCopy("web01", "disk0", SIZE, SIZE, null);
    assertThat(agents.p.replicate("web01").appliedGeneration()).isEqualTo(1);
    agents.p.completeInitialReplication("web01");

    // a guest write, then a swap that seals generation 2 without shipping it
    source = agents.primary.vms().get("web01").disk("disk0");
    byte[] data = new byte[DATA];
    Arrays.fill(data, (byte) 0xab);
    source.write(4096, ByteBuffer.wrap(data), true);
    assertThat(source.withWritesHeld(() -> source.tracker().swap())).isEqualTo(2);

    incoming = agents.secondary.diskImage("web01", "disk0").resolveSibling("incoming");
    replicaImage = agents.secondary.diskImage("web01", "disk0");
    replicaBefore = Files.readAllBytes(replicaImage);
    assertThat(replicaBefore[4096]).isZero();
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  private Path sealedLog() {
    return source.tracker().sealedLogs().get(0).path();
  }

  private Path damagedCopy(int position) throws IOException {
    byte[] bytes = Files.readAllBytes(sealedLog());
    int at = position >= 0 ? position : bytes.length + position;
    bytes[at] ^= 0x40;
    return Files.write(tmp.resolve("damaged-" + position + ".hrl"), bytes);
  }

  private void assertNothingStagedOrApplied() throws IOException {
    if (Files.exists(incoming)) {
      try (Stream<Path> files = Files.list(incoming)) {
        assertThat(files.toList()).as("files left in the replica's incoming folder").isEmpty();
      }
    }
    assertThat(agents.s.getVm("web01").replica().appliedGeneration()).isEqualTo(1);
    assertThat(Files.mismatch(replicaImage, writeTemp(replicaBefore))).isEqualTo(-1L);
  }

  private Path writeTemp(byte[] bytes) throws IOException {
    return Files.write(Files.createTempFile(tmp, "expected", ".img"), bytes);
  }

  @ParameterizedTest(name = "byte {0}")
  @ValueSource(ints = {
      10, // header: version
      40, // header: disk size
      HrlFormat.HEADER_SIZE + 9, // record header: offset
      HrlFormat.HEADER_SIZE + 20, // record header: data checksum
      HrlFormat.HEADER_SIZE + 32 + 1000, // record data
      -20, // trailer: data byte count
      -1}) // trailer checksum
  void aLogDamagedInTransitIsRefusedAndNeverApplied(int position) throws IOException {
    Path damaged = damagedCopy(position);

    AgentException refused = catchThrowableOfType(AgentException.class,
        () -> agents.feed.sendLog("web01", "disk0", 2, damaged));
    assertThat(refused).isNotNull();
    assertThat(refused.code()).isEqualTo(ErrorCode.TRANSFER_CORRUPT);
    assertThat(refused.code().recoverable()).as("a bad transfer is worth retrying").isTrue();

    // applying a generation that never arrived is refused as well
    AgentException notArrived = catchThrowableOfType(AgentException.class,
        () -> agents.feed.applyLogs("web01", new ApplyRequest(2, Instant.now(), false, null)));
    assertThat(notArrived.code()).isEqualTo(ErrorCode.INVALID_STATE);
    assertNothingStagedOrApplied();

    // the retry with the good bytes goes through
    agents.feed.sendLog("web01", "disk0", 2, sealedLog());
    agents.feed.applyLogs("web01", new ApplyRequest(2, Instant.now(), false, null));
    assertThat(Files.readAllBytes(replicaImage)[4096]).isEqualTo((byte) 0xab);
  }

  @Test
  void aTruncatedLogIsRefused() throws IOException {
    byte[] bytes = Files.readAllBytes(sealedLog());
    Path truncated = Files.write(tmp.resolve("truncated.hrl"),
        Arrays.copyOf(bytes, bytes.length - HrlFormat.TRAILER_SIZE));
    AgentException refused = catchThrowableOfType(AgentException.class,
        () -> agents.feed.sendLog("web01", "disk0", 2, truncated));
    assertThat(refused.code()).isEqualTo(ErrorCode.TRANSFER_CORRUPT);
    assertNothingStagedOrApplied();
  }

  @Test
  void aSoundLogUnderTheWrongGenerationOrDiskIsRefused() throws IOException {
    AgentException wrongGeneration = catchThrowableOfType(AgentException.class,
        () -> agents.feed.sendLog("web01", "disk0", 3, sealedLog()));
    assertThat(wrongGeneration.code()).isEqualTo(ErrorCode.TRANSFER_CORRUPT);

    agents.p.createVm("other", java.util.List.of(SIZE));
    agents.p.enableProtection("other", "secondary");
    AgentException wrongDisk = catchThrowableOfType(AgentException.class,
        () -> agents.feed.sendLog("other", "disk0", 2, sealedLog()));
    assertThat(wrongDisk.code()).isEqualTo(ErrorCode.TRANSFER_CORRUPT);
    assertNothingStagedOrApplied();
  }

  @Test
  void aStagedLogDamagedAtRestIsNotApplied() throws IOException {
    agents.feed.sendLog("web01", "disk0", 2, sealedLog());
    Path staged = incoming.resolve(HrlFormat.fileName("disk0", 2));
    assertThat(staged).exists();
    byte[] bytes = Files.readAllBytes(staged);
    bytes[HrlFormat.HEADER_SIZE + 32 + DATA - 1] ^= 0x01; // the last data byte of the write
    Files.write(staged, bytes);

    AgentException refused = catchThrowableOfType(AgentException.class,
        () -> agents.feed.applyLogs("web01", new ApplyRequest(2, Instant.now(), false, null)));
    // recoverable: the source still holds its sound copy until the generation is applied
    assertThat(refused.code()).isEqualTo(ErrorCode.TRANSFER_CORRUPT);
    assertThat(staged).as("the damaged copy is dropped").doesNotExist();
    assertThat(agents.s.getVm("web01").replica().appliedGeneration()).isEqualTo(1);
    assertThat(Files.mismatch(replicaImage, writeTemp(replicaBefore)))
        .as("not even the records before the damage were applied").isEqualTo(-1L);

    // the source ships it again, which replaces the staged copy
    assertThat(agents.p.replicate("web01").appliedGeneration()).isEqualTo(3);
    assertThat(Files.mismatch(replicaImage, agents.primary.diskImage("web01", "disk0")))
        .isEqualTo(-1L);
  }

  @Test
  void theSourceRefusesToShipALogDamagedAtHome() throws IOException {
    byte[] bytes = Files.readAllBytes(sealedLog());
    bytes[HrlFormat.HEADER_SIZE + 32 + 5] ^= 0x01;
    Files.write(sealedLog(), bytes);

    AgentException refused = catchThrowableOfType(AgentException.class,
        () -> agents.p.replicate("web01"));
    assertThat(refused.code()).isEqualTo(ErrorCode.LOG_CORRUPT);
    assertThat(refused.getMessage()).contains("resync");
    assertNothingStagedOrApplied();
  }

  @Test
  void theGoodLogReplicatesAndTheReplicaEqualsTheSource() throws IOException {
    assertThat(agents.p.replicate("web01").appliedGeneration()).isEqualTo(3);
    assertThat(Files.mismatch(replicaImage, agents.primary.diskImage("web01", "disk0")))
        .isEqualTo(-1L);
  }
}
