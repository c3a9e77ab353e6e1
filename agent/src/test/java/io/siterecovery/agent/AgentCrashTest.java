package io.siterecovery.agent;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.testing.AgentProcess;
import io.siterecovery.agent.testing.HrlFile;
import io.siterecovery.agent.testing.ProcessOutput;
import io.siterecovery.agent.testing.QemuIoSession;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Random;
import java.util.UUID;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The agent killed with SIGKILL: a write acknowledged after FLUSH or with FUA is in the disk and in
 * the active .hrl when the agent comes back, and a torn log tail is cut off, not fatal.
 */
class AgentCrashTest {
  private static final long SIZE = 16L << 20;
  private static final long MIB = 1L << 20;

  @TempDir Path tmp;
  private HostAgent secondary;
  private Path data;
  private AgentProcess agent;

  @BeforeEach
  void start() throws IOException {
    assumeInstalled("qemu-io", "qemu-img");
    secondary = AgentPair.start("secondary", tmp.resolve("secondary"));
    data = tmp.resolve("primary");
    agent = AgentProcess.start("primary", data, List.of(),
        java.util.Map.of("secondary", secondary.url()));
  }

  @AfterEach
  void stop() throws Exception {
    try {
      if (agent != null) {
        agent.close();
      }
    } finally {
      if (secondary != null) {
        secondary.close();
      }
    }
  }

  private Path activeLog() {
    return data.resolve("vms").resolve("web01").resolve(HrlFormat.fileName("disk0", 1));
  }

  private UUID protect(AgentClient client) {
    client.createVm("web01", List.of(SIZE));
    client.enableProtection("web01", "secondary");
    assertThat(activeLog()).exists();
    return client.getVm("web01").disks().get(0).id();
  }

  /** Restarts the killed agent on the same data directory (on new ports). */
  private AgentClient restart() throws IOException {
    agent = AgentProcess.start("primary", data, List.of(),
        java.util.Map.of("secondary", secondary.url()));
    return agent.client();
  }

  /** Finishes replication and has qemu-img judge the replica against the source. */
  private void replicateAndCompare(AgentClient client) {
    long offset = 0;
    while (offset < SIZE) {
      offset = client.copyRange("web01", "disk0", offset, 4 * MIB).nextOffset();
    }
    assertThat(client.replicate("web01").appliedGeneration()).isEqualTo(1);
    client.completeInitialReplication("web01");
    compareRaw(data.resolve("vms/web01/disk0.img").toString(),
        secondary.diskImage("web01", "disk0").toString()).assertOk();
  }

  private static String describe(HrlFile.Entry e) {
    String fill = "mixed";
    if (!e.isWrite()) {
      fill = "-";
    } else if (e.data().length > 0 && e.isWriteOf(e.data()[0])) {
      fill = String.format("%02x", e.data()[0]);
    }
    return (e.isWrite() ? "WRITE " : "ZERO ") + e.offset() + "+" + e.length() + " " + fill;
  }

  @Test
  void flushedAndFuaWritesSurviveKill9InTheDiskAndInTheLog() throws Exception {
    UUID diskId = protect(agent.client());

    // qemu-io stays connected while the agent is killed, so nothing is flushed at its exit
    try (QemuIoSession qemu = QemuIoSession.open(agent.nbdUri("web01", "disk0"))) {
      qemu.ok("write -P 0x5a 0 1M");
      qemu.ok("write -P 0x7e 2M 64k");
      qemu.ok("flush");
      qemu.ok("write -f -P 0x6b 1M 64k"); // FUA, and no flush after it
      qemu.ok("write -z -f 2M 32k"); // WRITE_ZEROES with FUA
      assertThat(ProcessOutput.occurrences(qemu.output(), "wrote ")).isEqualTo(4);

      agent.kill();
    }

    AgentClient client = restart();
    assertThat(client.getVm("web01").protection()).isNotNull();

    // the disk: read back through NBD by qemu-io
    qemuIo(agent.nbdUri("web01", "disk0"),
        "read -P 0x5a 0 1M",
        "read -P 0x6b 1M 64k",
        "read -P 0 2M 32k",
        "read -P 0x7e 2080k 32k").assertOk();

    // the log: the agent's reader finds it whole, and a naive reader finds the records
    HrlReader.Scan scan = HrlReader.scan(activeLog());
    assertThat(scan.sealed()).isFalse();
    assertThat(scan.tornReason()).isNull();
    assertThat(scan.header().generation()).isEqualTo(1);
    assertThat(scan.header().diskId()).isEqualTo(diskId);
    assertThat(scan.records()).isGreaterThanOrEqualTo(4);
    assertThat(HrlFile.entries(activeLog())).extracting(AgentCrashTest::describe)
        .containsSubsequence(
            "WRITE 0+1048576 5a",
            "WRITE 2097152+65536 7e",
            "WRITE 1048576+65536 6b",
            "ZERO 2097152+32768 -");

    // and the recovered log carries the replica to exactly the source
    replicateAndCompare(client);
  }

  @ParameterizedTest(name = "{0}")
  @ValueSource(strings = {"garbage", "half-appended record"})
  void aTornTailOfTheActiveLogIsCutOffOnRestartAndTheValidRecordsAreKept(String tail)
      throws Exception {
    protect(agent.client());
    qemuIo(agent.nbdUri("web01", "disk0"), "write -P 0x21 0 256k", "write -P 0x22 1M 4k", "flush")
        .assertOk();
    agent.kill();

    long valid = Files.size(activeLog());
    long records = HrlReader.scan(activeLog()).records();
    assertThat(records).isGreaterThanOrEqualTo(2);
    if (tail.equals("garbage")) {
      byte[] garbage = new byte[4000];
      new Random(99).nextBytes(garbage);
      Files.write(activeLog(), garbage, StandardOpenOption.APPEND);
    } else {
      // the agent died in the middle of appending a 64 KiB write: its header and part of its data
      ByteBuffer head = ByteBuffer.allocate(HrlFormat.RECORD_HEADER_SIZE)
          .order(ByteOrder.LITTLE_ENDIAN);
      head.putInt(HrlFormat.RECORD_MAGIC).putShort(HrlFormat.TYPE_WRITE).putShort((short) 0)
          .putLong(4 * MIB).putInt(65536).putInt(0x12345678);
      CRC32C crc = new CRC32C();
      crc.update(head.array(), 0, 24);
      head.putInt((int) crc.getValue()).putInt(0);
      Files.write(activeLog(), head.array(), StandardOpenOption.APPEND);
      Files.write(activeLog(), new byte[5000], StandardOpenOption.APPEND);
    }
    assertThat(HrlReader.scan(activeLog()).tornReason()).isNotNull();

    AgentClient client = restart();
    assertThat(Files.size(activeLog())).as("log truncated to its valid records").isEqualTo(valid);
    HrlReader.Scan scan = HrlReader.scan(activeLog());
    assertThat(scan.tornReason()).isNull();
    assertThat(scan.records()).isEqualTo(records);
    assertThat(agent.output()).contains("torn tail");

    qemuIo(agent.nbdUri("web01", "disk0"), "read -P 0x21 0 256k", "read -P 0x22 1M 4k",
        "write -P 0x23 8M 64k").assertOk();
    assertThat(HrlReader.scan(activeLog()).records()).isEqualTo(records + 1);

    // the log, sealed and shipped, verifies on the replica and brings it to the source's state
    replicateAndCompare(client);
  }
}
