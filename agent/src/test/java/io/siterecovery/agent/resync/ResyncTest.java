package io.siterecovery.agent.resync;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentMessages.BlockDigest;
import io.siterecovery.agent.api.AgentMessages.ChecksumRequest;
import io.siterecovery.agent.api.AgentMessages.ResyncBegin;
import io.siterecovery.agent.api.AgentMessages.ResyncStepRequest;
import io.siterecovery.agent.api.AgentMessages.SourceStatus;
import io.siterecovery.agent.api.AgentMessages.TransferOptions;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.Divergence;
import io.siterecovery.agent.testing.ResyncRun;
import io.siterecovery.agent.vm.VmRecord;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.TreeSet;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Resync by fixed-block checksums between two in-process agents: a replica damaged behind the
 * agents' back is repaired by sending the differing blocks only, writes made meanwhile reach it
 * through the logs that follow, and {@code qemu-img compare} judges the result.
 */
class ResyncTest {
  private static final long MIB = 1L << 20;
  private static final long SIZE0 = 24 * MIB;
  private static final long SIZE1 = 4 * MIB + 512; // its last block is short
  private static final int BLOCK = 64 << 10;

  @TempDir Path tmp;
  private AgentPair agents;

  @BeforeEach
  void start() throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    agents = AgentPair.start(tmp);
  }

  @AfterEach
  void stop() {
    if (agents != null) {
      agents.close();
    }
  }

  /** A protected VM with random data and holes, replicated and consistent at generation 1. */
  private void protectedAndReplicated(String vm) throws IOException {
    agents.createProtected(vm, SIZE0, SIZE1);
    byte[] random = new byte[(int) (8 * MIB)];
    new Random(7).nextBytes(random);
    Path file = Files.write(tmp.resolve("random-" + vm + ".bin"), random);
    qemuIo(agents.primary.nbdUri(vm, "disk0"), "write -s " + file + " 0 8M",
        "write -s " + file + " 12M 8M").assertOk(); // 8M..12M and 20M..24M stay zero
    qemuIo(agents.primary.nbdUri(vm, "disk1"), "write -s " + file + " 0 4M",
        "write -P 0x5c 4M 512").assertOk();
    agents.initialCopy(vm, "disk0", SIZE0, 8 * MIB, null);
    agents.initialCopy(vm, "disk1", SIZE1, 8 * MIB, null);
    assertThat(agents.p.replicate(vm).appliedGeneration()).isEqualTo(1);
    agents.p.completeInitialReplication(vm);
    assertIdentical(vm);
  }

  private void assertIdentical(String vm) {
    for (String disk : List.of("disk0", "disk1")) {
      compareRaw(agents.primaryImage(vm, disk), agents.replicaImage(vm, disk)).assertOk();
    }
  }

  private Path replicaDir(String vm) {
    return agents.secondary.diskImage(vm, "disk0").getParent();
  }

  private Path sourceDir(String vm) {
    return agents.primary.diskImage(vm, "disk0").getParent();
  }

  @ParameterizedTest(name = "block size {0}, compress {1}, digest {2}")
  @CsvSource({"0, false,", "4096, true,", "0, false, SHA_256"})
  void aDamagedReplicaIsRepairedBySendingOnlyTheDifferingBlocks(int blockSize, boolean compress,
      BlockDigest digest) throws IOException {
    protectedAndReplicated("web01");
    int bs = blockSize == 0 ? BLOCK : blockSize;
    Random rnd = new Random(11);
    TreeSet<Long> blocks0 = Divergence.pickBlocks(rnd, SIZE0 / bs, 20);
    blocks0.add((8 * MIB) / bs); // a block the source holds as zeroes: it must be sent too
    Divergence.inject(Path.of(agents.replicaImage("web01", "disk0")), blocks0, bs, rnd);
    long lastBlock1 = (SIZE1 + bs - 1) / bs - 1;
    Divergence.inject(Path.of(agents.replicaImage("web01", "disk1")), List.of(0L, lastBlock1), bs,
        rnd);
    compareRaw(agents.primaryImage("web01", "disk0"), agents.replicaImage("web01", "disk0"))
        .assertFailed(); // the oracle sees the damage

    ResyncBegin begin = agents.p.beginResync("web01");
    assertThat(begin.generation()).isEqualTo(2);
    assertThat(replicaDir("web01").resolve("resync.json")).exists();
    TransferOptions transfer = new TransferOptions(compress, null);
    ResyncRun.Totals t0 = ResyncRun.disk(agents.p, "web01", "disk0", 0, 37, blockSize, transfer,
        digest, null);
    ResyncRun.Totals t1 = ResyncRun.disk(agents.p, "web01", "disk1", 0, 1000, blockSize, transfer,
        digest, null);

    assertThat(t0.totalBlocks()).isEqualTo(SIZE0 / bs);
    assertThat(t0.blocksCompared()).isEqualTo(SIZE0 / bs);
    assertThat(t0.blocksDiffering()).isEqualTo(blocks0.size());
    assertThat(t0.bytesSent()).isEqualTo(blocks0.size() * (long) bs);
    assertThat(t1.totalBlocks()).isEqualTo(lastBlock1 + 1);
    assertThat(t1.blocksDiffering()).isEqualTo(2);
    assertThat(t1.bytesSent()).isEqualTo(bs + (SIZE1 - lastBlock1 * bs));

    VmRecord replica = agents.p.completeResync("web01");
    assertThat(replica.replica().appliedGeneration()).isEqualTo(2);
    assertThat(replica.replica().pointTime()).as("no point until g+1 is applied").isNull();
    assertThat(replicaDir("web01").resolve("resync.json")).doesNotExist();
    assertThat(ResyncLedger.load(sourceDir("web01")).underWay()).isFalse();
    assertThat(ResyncLedger.load(sourceDir("web01")).requiredReason()).isNull();
    assertIdentical("web01");

    // delta replication resumes on top: generation 3 carries the writes made since the resync
    qemuIo(agents.primary.nbdUri("web01", "disk0"), "write -P 0x31 100k 8k").assertOk();
    var cycle = agents.p.replicate("web01");
    assertThat(cycle.appliedGeneration()).isEqualTo(3);
    assertThat(cycle.pointTime()).isNotNull();
    assertIdentical("web01");
  }

  @Test
  void writesDuringTheStepsAreTrackedAndShippedAfterTheResync() throws IOException {
    protectedAndReplicated("web01");
    Random rnd = new Random(12);
    Divergence.inject(Path.of(agents.replicaImage("web01", "disk0")),
        Divergence.pickBlocks(rnd, SIZE0 / BLOCK, 30), BLOCK, rnd);
    long g = agents.p.beginResync("web01").generation();

    AgentException refused = catchThrowableOfType(AgentException.class,
        () -> agents.p.replicate("web01"));
    assertThat(refused.code()).isEqualTo(ErrorCode.RESYNC_IN_PROGRESS);
    assertThat(refused.code().recoverable()).isTrue();

    String nbd = agents.primary.nbdUri("web01", "disk0");
    List<String> written = new ArrayList<>();
    ResyncRun.Totals t = ResyncRun.disk(agents.p, "web01", "disk0", 0, 32, 0, null, cursor -> {
      long at = cursor * BLOCK;
      List<String> cmds = new ArrayList<>();
      int pattern = 1 + rnd.nextInt(254);
      // behind the cursor (compared already, so only the log can carry it), across it, ahead
      cmds.add("write -P " + pattern + " " + align(rnd.nextLong(at - 4096), 512) + " 4k");
      if (at < SIZE0) {
        cmds.add("write -P " + (pattern ^ 0xff) + " " + (at - 2048) + " 4k");
        cmds.add("write -z " + (at + align(rnd.nextLong(SIZE0 - at - 65536), 4096)) + " 64k");
      }
      if (rnd.nextInt(3) == 0) {
        cmds.add("discard " + align(rnd.nextLong(at - 16384), 4096) + " 16k");
      }
      written.addAll(cmds);
      qemuIo(nbd, cmds.toArray(String[]::new)).assertOk();
    });
    assertThat(t.blocksDiffering()).isGreaterThanOrEqualTo(30);
    ResyncRun.disk(agents.p, "web01", "disk1", 0, 64, 0, null, null);
    assertThat(agents.p.completeResync("web01").replica().appliedGeneration()).isEqualTo(g);
    // the writes behind the cursor are not there yet: they are in generation g + 1
    compareRaw(agents.primaryImage("web01", "disk0"), agents.replicaImage("web01", "disk0"))
        .assertFailed();

    var cycle = agents.p.replicate("web01");
    assertThat(cycle.appliedGeneration()).isEqualTo(g + 1);
    assertThat(written).isNotEmpty();
    assertIdentical("web01");
  }

  @Test
  void beginIsIdempotentAndDropsTheLogsItMakesMoot() throws IOException {
    protectedAndReplicated("web01");
    // generation 2 sealed and staged on the replica but never applied, like a cycle cut short
    VirtualDisk source = agents.primary.vms().get("web01").disk("disk0");
    byte[] data = new byte[8192];
    Arrays.fill(data, (byte) 0x77);
    source.write(MIB, ByteBuffer.wrap(data), true);
    long sealed = source.withWritesHeld(() -> {
      long g = -1;
      for (VirtualDisk d : agents.primary.vms().get("web01").disks()) {
        g = d.tracker().swap();
      }
      return g;
    });
    assertThat(sealed).isEqualTo(2);
    agents.feed.sendLog("web01", "disk0", 2, source.tracker().sealedLogs().get(0).path());
    Path incoming = replicaDir("web01").resolve("incoming");
    assertThat(incoming.resolve(HrlFormat.fileName("disk0", 2))).exists();
    assertThat(agents.p.sourceStatus("web01").sealedLogs()).isEqualTo(2);

    long g = agents.p.beginResync("web01").generation();
    assertThat(g).isEqualTo(3);
    Long seed = ResyncLedger.load(sourceDir("web01")).seed();
    assertThat(agents.p.beginResync("web01").generation()).as("again: the same").isEqualTo(3);
    assertThat(ResyncLedger.load(sourceDir("web01")).seed()).as("and the same key")
        .isNotNull().isEqualTo(seed);
    SourceStatus status = agents.p.sourceStatus("web01");
    assertThat(status.sealedLogs()).as("logs up to g discarded at the source").isZero();
    assertThat(status.activeGeneration()).isEqualTo(4);
    try (Stream<Path> staged = Files.list(incoming)) {
      assertThat(staged.toList()).as("and on the replica").isEmpty();
    }
    assertThat(Files.readString(replicaDir("web01").resolve("resync.json")))
        .contains("\"generation\" : 3");

    AgentException early = catchThrowableOfType(AgentException.class,
        () -> agents.p.completeResync("web01"));
    assertThat(early.code()).isEqualTo(ErrorCode.INVALID_STATE);
    assertThat(early.getMessage()).contains("disk0");
    // a step repeated (a retried activity) and one past a gap do not break the count
    ResyncRun.steps(agents.p, "web01", "disk0", 0, 100, 0, null, 1, null);
    ResyncRun.steps(agents.p, "web01", "disk0", 0, 100, 0, null, 1, null);
    ResyncRun.disk(agents.p, "web01", "disk0", 200, 100, 0, null, null);
    assertThat(catchThrowableOfType(AgentException.class,
        () -> agents.p.completeResync("web01")).getMessage()).contains("disk0");
    ResyncRun.disk(agents.p, "web01", "disk0", 100, 100, 0, null, null);
    ResyncRun.disk(agents.p, "web01", "disk1", 0, 100, 0, null, null);
    assertThat(agents.p.completeResync("web01").replica().appliedGeneration()).isEqualTo(3);
    // a complete repeated by a retry whose worker died before the answer: answered again
    assertThat(agents.p.completeResync("web01").replica().appliedGeneration()).isEqualTo(3);
    assertIdentical("web01");

    assertThat(agents.p.replicate("web01").appliedGeneration()).isEqualTo(4);
    assertIdentical("web01");
    assertThat(agents.p.completeResync("web01").replica().appliedGeneration()).isEqualTo(4);
  }

  @Test
  void theReplicaDigestsItsBlocksAsTheSourceDoes() throws IOException {
    protectedAndReplicated("web01");
    agents.p.beginResync("web01");
    long seed = ResyncLedger.load(sourceDir("web01")).seed();
    VirtualDisk source = agents.primary.vms().get("web01").disk("disk0");
    int count = (int) (SIZE0 / BLOCK);
    for (BlockDigest digest : BlockDigest.values()) {
      assertThat(agents.feed.replicaChecksums("web01", "disk0",
          new ChecksumRequest(0, count, 0, digest, seed)))
          .as("%s over data and holes", digest)
          .hasSize(count * digest.bytes())
          .isEqualTo(BlockChecksums.compute(source, 0, count, BLOCK, digest, seed));
    }
    assertThat(agents.feed.replicaChecksums("web01", "disk0", new ChecksumRequest(0, count, 0, null,
        0))).as("no digest named: SHA-256, as a source agent from before keyed digests expects")
        .isEqualTo(BlockChecksums.compute(source, 0, count, BLOCK, BlockDigest.SHA_256, 0));
  }

  @Test
  void aCorruptSealedLogRequiresAResyncUntilOneCompletes() throws IOException {
    protectedAndReplicated("web01");
    SourceStatus clean = agents.p.sourceStatus("web01");
    assertThat(clean.resyncRequiredReason()).isNull();
    assertThat(clean.diskBytes()).isEqualTo(SIZE0 + SIZE1);

    VirtualDisk source = agents.primary.vms().get("web01").disk("disk0");
    byte[] data = new byte[65536];
    Arrays.fill(data, (byte) 0xab);
    source.write(4096, ByteBuffer.wrap(data), true);
    for (VirtualDisk d : agents.primary.vms().get("web01").disks()) {
      d.withWritesHeld(() -> d.tracker().swap());
    }
    Path log = source.tracker().sealedLogs().get(0).path();
    byte[] bytes = Files.readAllBytes(log);
    bytes[HrlFormat.HEADER_SIZE + 32 + 5] ^= 0x01;
    Files.write(log, bytes);

    AgentException corrupt = catchThrowableOfType(AgentException.class,
        () -> agents.p.replicate("web01"));
    assertThat(corrupt.code()).isEqualTo(ErrorCode.LOG_CORRUPT);
    String reason = agents.p.sourceStatus("web01").resyncRequiredReason();
    assertThat(reason).contains("LOG_CORRUPT").contains("disk0").contains("generation 2");

    long g = agents.p.beginResync("web01").generation();
    ResyncRun.Totals t = ResyncRun.disk(agents.p, "web01", "disk0", 0, 128, 0, null, null);
    assertThat(t.blocksDiffering()).as("the block the lost log held").isEqualTo(2);
    ResyncRun.disk(agents.p, "web01", "disk1", 0, 128, 0, null, null);
    assertThat(agents.p.sourceStatus("web01").resyncRequiredReason()).as("until complete")
        .isEqualTo(reason);
    agents.p.completeResync("web01");
    assertThat(agents.p.sourceStatus("web01").resyncRequiredReason()).isNull();
    assertIdentical("web01");
    assertThat(agents.p.replicate("web01").appliedGeneration()).isEqualTo(g + 1);
    assertIdentical("web01");
  }

  @Test
  void aSealedLogThatVanishedRequiresAResyncToo() throws IOException {
    protectedAndReplicated("web01");
    for (VirtualDisk d : agents.primary.vms().get("web01").disks()) {
      d.withWritesHeld(() -> d.tracker().swap());
    }
    VirtualDisk disk1 = agents.primary.vms().get("web01").disk("disk1");
    Files.delete(disk1.tracker().sealedLogs().get(0).path());
    assertThat(catchThrowableOfType(AgentException.class, () -> agents.p.replicate("web01"))
        .code()).isEqualTo(ErrorCode.LOG_CORRUPT);
    assertThat(agents.p.sourceStatus("web01").resyncRequiredReason())
        .contains("generation 2 of web01/disk1 is missing");
  }

  @Test
  void badResyncRequestsAreRefusedWithTheirCode() throws IOException {
    protectedAndReplicated("web01");
    assertThat(catchThrowableOfType(AgentException.class, () -> agents.p.resyncStep("web01",
        "disk0", new ResyncStepRequest(0, 10, 0, null, null))).code())
        .as("no resync begun").isEqualTo(ErrorCode.INVALID_STATE);
    agents.p.beginResync("web01");
    for (ResyncStepRequest bad : List.of(
        new ResyncStepRequest(0, 10, 1000, null, null), // not a multiple of 512
        new ResyncStepRequest(0, 10, 32 << 20, null, null), // too large
        new ResyncStepRequest(0, 0, 0, null, null), // no blocks
        new ResyncStepRequest(-1, 10, 0, null, null),
        new ResyncStepRequest(SIZE0 / BLOCK + 1, 10, 0, null, null), // past the end
        new ResyncStepRequest(0, 10, 0, new TransferOptions(false, -4.0), null))) {
      AgentException e = catchThrowableOfType(AgentException.class,
          () -> agents.p.resyncStep("web01", "disk0", bad));
      assertThat(e).as("%s", bad).isNotNull();
      assertThat(e.code()).as("%s", bad).isEqualTo(ErrorCode.BAD_REQUEST);
    }
    // at the end of the disk a step is an empty, harmless answer
    var end = agents.p.resyncStep("web01", "disk0", new ResyncStepRequest(SIZE0 / BLOCK, 10, 0,
        null, null));
    assertThat(end.nextBlock()).isEqualTo(SIZE0 / BLOCK);
    assertThat(end.blocksCompared()).isZero();

    agents.p.createVm("plain", List.of(MIB));
    assertThat(catchThrowableOfType(AgentException.class, () -> agents.p.beginResync("plain"))
        .code()).isEqualTo(ErrorCode.INVALID_STATE);

    // disabling protection forgets the resync: a new relationship starts at generation 1
    agents.p.disableProtection("web01");
    assertThat(sourceDir("web01").resolve("resync-source.json")).doesNotExist();
    agents.p.enableProtection("web01", agents.secondary.site());
    agents.initialCopy("web01", "disk0", SIZE0, SIZE0, null);
    agents.initialCopy("web01", "disk1", SIZE1, SIZE1, null);
    assertThat(agents.p.replicate("web01").appliedGeneration()).isEqualTo(1);
    assertIdentical("web01");
  }

  private static long align(long value, long to) {
    return value / to * to;
  }
}
