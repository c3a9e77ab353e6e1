package io.siterecovery.agent.objectstore;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries.RecoveryProgress;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Arrays;

/** What the recovery-host tests wait for and how they build the images they expect. */
final class RecoveryWaits {
  private RecoveryWaits() {}

  /** Until {@code vm}'s background fetch is complete, failing on a failed chunk or after 2 min. */
  static RecoveryProgress awaitComplete(AgentClient operator, String vm) {
    long deadline = System.nanoTime() + Duration.ofSeconds(120).toNanos();
    RecoveryProgress p;
    while (!(p = operator.recoveryProgress(vm)).complete()) {
      assertThat(p.disks().get(0).failedChunks()).as("failed chunks").isEmpty();
      assertThat(System.nanoTime()).as("the fetch completes").isLessThan(deadline);
      Thread.onSpinWait();
    }
    return p;
  }

  /** Writes {@code length} bytes of {@code pattern} at {@code offset} into an image file. */
  static void writeImage(Path image, long offset, int length, byte pattern) throws Exception {
    byte[] bytes = new byte[length];
    Arrays.fill(bytes, pattern);
    try (FileChannel file = FileChannel.open(image, StandardOpenOption.WRITE)) {
      file.write(ByteBuffer.wrap(bytes), offset);
    }
  }
}
