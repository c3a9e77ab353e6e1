package io.siterecovery.agent.replica;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.compareRaw;
import static io.siterecovery.agent.testing.Tools.qemuIo;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.testing.AgentPair;
import java.io.IOException;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A replica whose data directory is full (a 64 MiB tmpfs, so root only) answers the source with
 * {@link ErrorCode#INSUFFICIENT_STORAGE} naming the site and its free space, whether the log
 * could not be staged or its undo data could not be written; nothing is half-applied, and once
 * space returns the next cycle makes the replica equal to the source.
 */
class ReplicaDiskFullTest {
  private static final long MIB = 1L << 20;

  @TempDir Path tmp;
  private AgentPair agents;
  private Path mounted;

  @AfterEach
  void stop() throws Exception {
    if (agents != null) {
      agents.close();
    }
    if (mounted != null) {
      run("umount", mounted.toString());
    }
  }

  private static int run(String... command) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(command).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    if (p.exitValue() != 0) {
      System.out.println(String.join(" ", command) + ": " + out.trim());
    }
    return p.exitValue();
  }

  /** Fills the file system of {@code dir} but {@code leave} bytes with one file, returned. */
  private static Path fill(Path dir, long leave) throws IOException {
    Path filler = dir.resolve("filler");
    byte[] block = new byte[4096];
    try (OutputStream out = Files.newOutputStream(filler)) {
      while (Files.getFileStore(dir).getUsableSpace() > leave) {
        out.write(block);
        out.flush();
      }
    }
    return filler;
  }

  private void write(String file, long seed, long offset, long length) throws IOException {
    byte[] data = new byte[(int) length];
    new Random(seed).nextBytes(data);
    Path content = Files.write(tmp.resolve(file), data);
    qemuIo(agents.primary.nbdUri("vm", "disk0"), "write -s " + content + " " + offset + " "
        + length).assertOk();
  }

  private void assertDiskFull(AgentException e) {
    System.out.println("at the source: " + e.code() + ": " + e.getMessage());
    assertThat(e.code()).isEqualTo(ErrorCode.INSUFFICIENT_STORAGE);
    assertThat(e.code().recoverable()).isTrue();
    assertThat(e.getMessage()).contains("replica site secondary is out of disk space (")
        .containsPattern("\\d+ bytes free");
  }

  @Test
  void aFullReplicaIsNamedAtTheSourceAndCatchesUpOnceSpaceReturns() throws Exception {
    assumeInstalled("qemu-io", "qemu-img");
    Path secondary = Files.createDirectories(tmp.resolve("secondary"));
    if (!"root".equals(System.getProperty("user.name"))
        || run("mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", secondary.toString()) != 0) {
      System.out.println("skipped: mounting a tmpfs for the replica's data directory needs root");
      assumeTrue(false, "mounting a tmpfs needs root");
    }
    mounted = secondary;
    agents = AgentPair.start(tmp);
    long size = 16 * MIB;
    agents.p.createVm("vm", List.of(size));
    write("initial.bin", 1, 0, size);
    agents.p.enableProtection("vm", "secondary");
    agents.initialCopy("vm", "disk0", size, size, null);
    agents.p.completeInitialReplication("vm");
    write("first.bin", 2, 0, MIB);
    assertThat(agents.p.replicate("vm").logsShipped()).isEqualTo(1);

    // No room for the log: staging fails and leaves nothing behind. A log of many MiB is still
    // being sent when the replica refuses it, so the answer needs the rest of the body read.
    write("second.bin", 3, MIB, 14 * MIB);
    Path filler = fill(secondary, 0);
    // Retried while full, on the source's pooled connection: the same answer each time.
    for (int i = 0; i < 3; i++) {
      assertDiskFull(catchThrowableOfType(() -> agents.p.replicate("vm"), AgentException.class));
    }
    Files.delete(filler);
    assertThat(agents.p.replicate("vm").logsShipped()).isPositive();
    compareRaw(agents.primaryImage("vm", "disk0"), agents.replicaImage("vm", "disk0"))
        .assertOk();

    // Room for the log but not for its undo data: the apply fails before any write.
    write("third.bin", 4, 2 * MIB, MIB);
    filler = fill(secondary, MIB + MIB / 2);
    AgentException apply = catchThrowableOfType(() -> agents.p.replicate("vm"),
        AgentException.class);
    assertDiskFull(apply);
    long applied = agents.s.getVm("vm").replica().appliedGeneration();
    Files.delete(filler);
    assertThat(agents.p.replicate("vm").logsShipped()).isPositive();
    assertThat(agents.s.getVm("vm").replica().appliedGeneration()).isGreaterThan(applied);
    compareRaw(agents.primaryImage("vm", "disk0"), agents.replicaImage("vm", "disk0"))
        .assertOk();
  }
}
