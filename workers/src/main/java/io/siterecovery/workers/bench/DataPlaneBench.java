package io.siterecovery.workers.bench;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Benchmarks of the data plane against references run in the same process and script: the
 * initial copy against {@code cp}, a sparse disk against the dense case, NBD writes with tracking
 * against {@code qemu-nbd} under the same fio job. Prints ratios; never fails on timing.
 */
final class DataPlaneBench implements AutoCloseable {
  private static final long MIB = 1 << 20;
  private static final long WARM_UP = 256 * MIB;

  private final Path dir;
  private final PrintStream out;
  private final HostAgent primary;
  private final HostAgent secondary;
  private final AgentClient source;
  private int vms;

  DataPlaneBench(Path dir, PrintStream out) throws IOException {
    this.dir = dir;
    this.out = out;
    this.primary = LocalSites.agent("primary", dir.resolve("primary"));
    this.secondary = LocalSites.agent("secondary", dir.resolve("secondary"));
    primary.addPeer("secondary", secondary.url());
    secondary.addPeer("primary", primary.url());
    this.source = LocalSites.operatorClient(primary.url(), "primary");
  }

  /** A new VM on the primary with one disk filled by {@code fill}; tracking off while filling. */
  private String vmWith(long size, long denseBytes) throws IOException {
    String vm = "bench" + (++vms);
    source.createVm(vm, List.of(size));
    DiskFiles.fillSpread(primary.diskImage(vm, "disk0"), size, denseBytes, 7);
    return vm;
  }

  /** Initial replication of one disk over HTTP, agent to agent; returns seconds. */
  private double replicate(String vm, long size) {
    long t0 = System.nanoTime();
    source.enableProtection(vm, "secondary");
    for (long off = 0; off < size; ) {
      off = source.copyRange(vm, "disk0", off, 256 * MIB).nextOffset();
    }
    source.replicate(vm);
    source.completeInitialReplication(vm);
    return (System.nanoTime() - t0) / 1e9;
  }

  private static double cp(Path from, Path to) throws IOException, InterruptedException {
    long t0 = System.nanoTime();
    ExternalTool.run(List.of("cp", from.toString(), to.toString()));
    ExternalTool.run(List.of("sync", to.toString()));
    double s = (System.nanoTime() - t0) / 1e9;
    Files.delete(to);
    return s;
  }

  List<Measured> run(long denseSize) throws Exception {
    List<Measured> results = new ArrayList<>();
    // An agent runs for months: its copy path is compiled long before a copy is timed. Unwarmed,
    // the first 256 MiB slice of the run took about 0.45 s longer than the next ones.
    double warmUp = replicate(vmWith(WARM_UP, WARM_UP), WARM_UP);
    out.printf("warm-up: initial replication of %d MiB, %.2f s (not measured)%n", WARM_UP / MIB,
        warmUp);
    String dense = vmWith(denseSize, denseSize);
    Path image = primary.diskImage(dense, "disk0");
    double cpSeconds = cp(image, dir.resolve("cp-reference.img"));
    double ours = replicate(dense, denseSize);
    double mbps = denseSize / MIB / ours;
    double cpMbps = denseSize / MIB / cpSeconds;
    out.printf("initial replication %d MiB dense: %.2f s (%.0f MiB/s); cp %.2f s (%.0f MiB/s)%n",
        denseSize / MIB, ours, mbps, cpSeconds, cpMbps);
    results.add(new Measured("initial replication, " + denseSize / MIB + " MiB random data",
        String.format("%.0f MiB/s", mbps), String.format("cp %.0f MiB/s", cpMbps),
        mbps / cpMbps, "≥ 1.0×", mbps / cpMbps >= 1.0));

    long sparseSize = 4 * denseSize;
    long written = denseSize / 4;
    double denseSmall = replicate(vmWith(written, written), written);
    double sparse = replicate(vmWith(sparseSize, written), sparseSize);
    out.printf("sparse %d MiB disk with %d MiB written: %.2f s; dense %d MiB: %.2f s%n",
        sparseSize / MIB, written / MIB, sparse, written / MIB, denseSmall);
    results.add(new Measured("sparse " + sparseSize / MIB + " MiB disk, " + written / MIB
        + " MiB written", String.format("%.2f s", sparse), String.format("dense %d MiB %.2f s",
        written / MIB, denseSmall), sparse / denseSmall, "≤ 1.5×", sparse / denseSmall <= 1.5));

    if (ExternalTool.installed("fio") && ExternalTool.installed("qemu-nbd")) {
      results.add(nbdWrites(denseSize));
    } else {
      out.println("fio or qemu-nbd not installed: NBD write benchmark skipped");
    }
    return results;
  }

  /** fio 4k randwrite iodepth 8 on our export (tracking on) and on qemu-nbd, same file. */
  /**
   * fio on the export of an agent running as its own process, as `./site-recovery agent` runs it
   * (-Xmx256m), tracking on, against qemu-nbd serving an identical empty image. The servers
   * alternate, two rounds each, with dirty pages flushed before every run: writeback left over
   * from a run would otherwise land on whichever server runs next.
   */
  private Measured nbdWrites(long diskSize) throws Exception {
    long size = Math.max(diskSize, 512 * MIB);
    Path copy = dir.resolve("qemu-nbd.img");
    try (java.io.RandomAccessFile f = new java.io.RandomAccessFile(copy.toFile(), "rw")) {
      f.setLength(size);
    }
    int port;
    try (java.net.ServerSocket s = new java.net.ServerSocket(0)) {
      port = s.getLocalPort();
    }
    Process qemuNbd = new ProcessBuilder("qemu-nbd", "-f", "raw", "-p", String.valueOf(port),
        "-b", "127.0.0.1", "-x", "bench", "--cache=writeback", "-t", copy.toString())
        .redirectErrorStream(true).start();
    try (AgentProcess agent = AgentProcess.start("nbd-primary", dir.resolve("nbd-primary"),
        dir.resolve("nbd-primary.log"), List.of("-Xmx256m"),
        java.util.Map.of("secondary", secondary.url()))) {
      secondary.addPeer("nbd-primary", agent.url());
      AgentClient client = LocalSites.operatorClient(agent.url(), "nbd-primary");
      client.createVm("nbd", List.of(size));
      client.enableProtection("nbd", "secondary");
      awaitPort(port);
      List<String> ours = fioJob("nbd://127.0.0.1:" + agent.nbdPort + "/nbd/disk0", size);
      List<String> ref = fioJob("nbd://127.0.0.1:" + port + "/bench", size);
      double ourIops = 0;
      double refIops = 0;
      for (int round = 0; round < 2; round++) {
        ExternalTool.run(List.of("sync"));
        ourIops += ExternalTool.fioIops(ExternalTool.run(ours)) / 2;
        ExternalTool.run(List.of("sync"));
        refIops += ExternalTool.fioIops(ExternalTool.run(ref)) / 2;
      }
      out.printf("NBD 4k randwrite iodepth 8: ours %.0f IOPS (agent process, tracking on), "
          + "qemu-nbd %.0f IOPS (means of two alternating runs)%n", ourIops, refIops);
      return new Measured("NBD 4k randwrite iodepth 8, tracking on", String.format("%.0f IOPS",
          ourIops), String.format("qemu-nbd %.0f IOPS", refIops), ourIops / refIops, "≥ 1.2×",
          ourIops >= 1.2 * refIops);
    } finally {
      qemuNbd.destroy();
      qemuNbd.waitFor();
    }
  }

  /** The same fio job for both servers; engine options must follow --ioengine. */
  private static List<String> fioJob(String uri, long diskSize) {
    return List.of("fio", "--name=randwrite", "--ioengine=nbd", "--uri=" + uri,
        "--rw=randwrite", "--bs=4k", "--iodepth=8", "--size=" + Math.min(diskSize, 512 * MIB),
        "--time_based", "--runtime=10", "--group_reporting");
  }

  private static void awaitPort(int port) throws InterruptedException {
    long deadline = System.nanoTime() + 10_000_000_000L;
    while (System.nanoTime() < deadline) {
      try (java.net.Socket s = new java.net.Socket("127.0.0.1", port)) {
        return;
      } catch (IOException notYet) {
        java.util.concurrent.locks.LockSupport.parkNanos(50_000_000);
      }
    }
    throw new IllegalStateException("qemu-nbd did not listen on " + port);
  }

  @Override
  public void close() throws IOException {
    primary.close();
    secondary.close();
  }

}
