package io.siterecovery.agent.replica;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.HrlHeader;
import io.siterecovery.agent.hrl.HrlWriter;
import io.siterecovery.agent.testing.AgentPair;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A log's records are checked against the disk size in its own header, so a replica keeps a log
 * only if that size is its disk's: otherwise a sound log of a "bigger disk" would write past the
 * end of the replica's image.
 */
class StagedLogSizeTest {
  private static final long SIZE = 4L << 20;

  @TempDir Path tmp;
  private AgentPair agents;

  @BeforeEach
  void protect() throws IOException {
    agents = AgentPair.start(tmp);
    agents.createProtected("web01", SIZE);
  }

  @AfterEach
  void stop() {
    agents.close();
  }

  @Test
  void aSoundLogOfABiggerDiskIsRefused() throws IOException {
    VirtualDisk source = agents.primary.vms().get("web01").disk("disk0");
    Path forged = tmp.resolve("bigger.hrl");
    try (HrlWriter w = HrlWriter.create(forged, new HrlHeader(source.id(), 1, 2 * SIZE, 1L))) {
      w.appendWrite(SIZE + 4096, ByteBuffer.allocate(4096)); // inside the header's disk only
      w.seal();
    }
    Path replicaImage = agents.secondary.diskImage("web01", "disk0");

    assertThatThrownBy(() -> agents.feed.sendLog("web01", "disk0", 1, forged))
        .isInstanceOf(AgentException.class)
        .hasMessageContaining(2 * SIZE + " bytes")
        .satisfies(e -> assertThat(((AgentException) e).code())
            .isEqualTo(ErrorCode.TRANSFER_CORRUPT));
    try (var staged = Files.list(replicaImage.resolveSibling("incoming"))) {
      assertThat(staged.toList()).isEmpty();
    }
    assertThat(Files.size(replicaImage)).isEqualTo(SIZE);
  }
}
