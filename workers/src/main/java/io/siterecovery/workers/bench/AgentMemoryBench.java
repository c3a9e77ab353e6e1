package io.siterecovery.workers.bench;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.nbd.NbdClient;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.locks.LockSupport;

/**
 * Peak memory of one primary agent replicating 20 VMs. The agent runs in a JVM of its own
 * ({@link AgentProcess}); the secondary runs in this process. 20 VMs with one disk each (64, 128, 192, 256 MiB, 3.2 GiB in all) are filled with
 * random data through NBD, then protected all at once while every VM keeps writing 2 MiB/s
 * through NBD (256 KiB writes at random offsets): the 20 initial copies run concurrently, then a
 * few delta cycles of all 20 at once. The figure is VmHWM, the kernel's peak resident set size.
 */
final class AgentMemoryBench {
  private static final long MIB = LocalSites.MIB;
  private static final int VMS = 20;
  private static final int CYCLES = 3;
  private static final long CYCLE_SECONDS = 5;
  private static final int WRITE = 256 << 10;
  private static final long WRITE_INTERVAL_NANOS = 125_000_000L; // 8 writes/s: 2 MiB/s per VM
  private static final long BUDGET = 512 * MIB;
  /**
   * The heap cap of the figure held against the target. Without a cap the JVM's default maximum
   * heap is a quarter of the host's memory and G1 grows the heap towards it rather than collect,
   * whatever the agent needs (with this cap, its heap after collections stayed under 180 MiB).
   * {@code site-recovery agent} passes no options, so {@link #run} measures that case too.
   */
  static final List<String> CAPPED = List.of("-Xmx256m");

  private final Path dir;
  private final PrintStream out;
  private final List<String> jvmOptions;
  private volatile boolean writing = true;

  private AgentMemoryBench(Path dir, PrintStream out, List<String> jvmOptions) {
    this.dir = dir;
    this.out = out;
    this.jvmOptions = jvmOptions;
  }

  /** With {@link #CAPPED}, then with the JVM's default heap, each in a directory of its own. */
  static List<Measured> run(Path dir, PrintStream out) throws Exception {
    List<Measured> results = new ArrayList<>();
    results.addAll(new AgentMemoryBench(dir.resolve("capped"), out, CAPPED).run());
    Bench.empty(dir.resolve("capped"));
    results.addAll(new AgentMemoryBench(dir.resolve("default"), out, List.of()).run());
    return results;
  }

  private List<Measured> run() throws Exception {
    Files.createDirectories(dir);
    ExecutorService pool = Executors.newFixedThreadPool(2 * VMS);
    try (HostAgent secondary = LocalSites.agent("secondary", dir.resolve("secondary"));
        AgentProcess primary = AgentProcess.start("primary", dir.resolve("primary"),
            dir.resolve("primary-agent.log"), jvmOptions,
            java.util.Map.of(secondary.site(), secondary.url()))) {
      secondary.addPeer("primary", primary.url());
      AgentClient agent = LocalSites.operatorClient(primary.url(), "primary");
      List<String> vms = new ArrayList<>();
      long total = 0;
      for (int i = 0; i < VMS; i++) {
        String vm = String.format(Locale.ROOT, "vm%02d", i + 1);
        long size = 64 * MIB * (1 + i % 4);
        agent.createVm(vm, List.of(size));
        vms.add(vm);
        total += size;
      }
      long t = System.nanoTime();
      all(pool, vms, vm -> fill(primary, vm, agent.getVm(vm).disks().get(0).sizeBytes()));
      double filled = seconds(t);
      long afterFill = primary.rssBytes();

      List<Future<?>> writers = new ArrayList<>();
      for (String vm : vms) {
        writers.add(pool.submit(() -> write(primary, vm)));
      }
      t = System.nanoTime();
      all(pool, vms, vm -> {
        agent.enableProtection(vm, secondary.site());
        long size = agent.getVm(vm).disks().get(0).sizeBytes();
        for (long at = 0; at < size; ) {
          at = agent.copyRange(vm, "disk0", at, Math.min(256 * MIB, size - at)).nextOffset();
        }
        agent.replicate(vm);
        agent.completeInitialReplication(vm);
      });
      double copied = seconds(t);
      long shipped = 0;
      for (int cycle = 0; cycle < CYCLES; cycle++) {
        Thread.sleep(CYCLE_SECONDS * 1000);
        for (Future<Long> f : pool.invokeAll(vms.stream().<Callable<Long>>map(
            vm -> () -> agent.replicate(vm).bytesShipped()).toList())) {
          shipped += f.get();
        }
      }
      writing = false;
      for (Future<?> w : writers) {
        w.get();
      }
      all(pool, vms, agent::replicate);
      long peak = primary.peakRssBytes();
      int differing = 0;
      for (String vm : vms) {
        differing += DiskFiles.identical(dir.resolve("primary/vms/" + vm + "/disk0.img"),
            secondary.diskImage(vm, "disk0")) ? 0 : 1;
      }
      out.printf(Locale.ROOT, "agent memory: %d VMs, %d MiB of disks filled through NBD in %.1f s"
          + " (RSS then %d MiB); 20 initial copies at once while writing %d MiB/s: %.1f s;"
          + " %d delta cycles of all VMs, %.0f MiB of logs; replicas identical at the end: %d of"
          + " %d; agent pid %d, JVM options %s: peak RSS (VmHWM) %d MiB%n", VMS, total / MIB,
          filled, afterFill / MIB, VMS * 2, copied, CYCLES, shipped / (double) MIB,
          VMS - differing, VMS, primary.pid(), jvmOptions, peak / MIB);
      String heap = jvmOptions.isEmpty() ? "default heap" : String.join(" ", jvmOptions);
      return List.of(new Measured("peak RSS of one agent replicating " + VMS + " VMs ("
          + total / MIB + " MiB of disks, " + VMS * 2 + " MiB/s of writes), " + heap,
          String.format(Locale.ROOT, "%d MiB%s", peak / MIB, differing == 0 ? ""
              : " (" + differing + " replicas NOT identical)"), "— (budget 512 MiB)",
          (double) peak / BUDGET, "≤ 512 MiB", peak <= BUDGET && differing == 0));
    } finally {
      writing = false;
      pool.shutdownNow();
    }
  }

  private interface VmTask {
    void run(String vm) throws Exception;
  }

  /** Runs the task for every VM at once and waits for all; the first failure is thrown. */
  private static void all(ExecutorService pool, List<String> vms, VmTask task) throws Exception {
    List<Future<Object>> done = pool.invokeAll(vms.stream().<Callable<Object>>map(vm -> () -> {
      task.run(vm);
      return null;
    }).toList());
    for (Future<Object> f : done) {
      f.get();
    }
  }

  /** Random data over the whole disk, 1 MiB per NBD write (before protection: not tracked). */
  private static void fill(AgentProcess agent, String vm, long size) throws IOException {
    byte[] chunk = new byte[(int) MIB];
    SplittableRandom rnd = new SplittableRandom(vm.hashCode());
    try (NbdClient nbd = new NbdClient("127.0.0.1", agent.nbdPort, vm + "/disk0")) {
      for (long at = 0; at < size; at += MIB) {
        rnd.nextBytes(chunk);
        nbd.write(at, chunk, false);
      }
      nbd.flush();
    }
  }

  /** 256 KiB writes at random 4 KiB-aligned offsets, 8 a second, until told to stop. */
  private Void write(AgentProcess agent, String vm) throws IOException {
    byte[] data = new byte[WRITE];
    SplittableRandom rnd = new SplittableRandom(vm.hashCode() + 1L);
    rnd.nextBytes(data);
    try (NbdClient nbd = new NbdClient("127.0.0.1", agent.nbdPort, vm + "/disk0")) {
      long slots = (nbd.size() - WRITE) / 4096;
      long next = System.nanoTime();
      while (writing) {
        data[(int) rnd.nextLong(WRITE)]++;
        nbd.write(rnd.nextLong(slots + 1) * 4096, data, false);
        next += WRITE_INTERVAL_NANOS;
        LockSupport.parkNanos(next - System.nanoTime());
      }
      nbd.flush();
    }
    return null;
  }

  private static double seconds(long since) {
    return (System.nanoTime() - since) / 1e9;
  }
}
