package io.siterecovery.agent.replica;

import io.siterecovery.agent.api.AgentMessages.ApplyRequest;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.vm.VmRecord.RecoveryPointInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.time.Instant;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * What undo data costs an apply: the same log applied to a replica that keeps no undo (its
 * initial copy is not complete, as before recovery points existed) and to one that does. Prints
 * rates and ratios; asserts nothing about time. Not part of the normal test run (the name does
 * not end in Test); run it with
 * {@code mvn -q -B -o -pl agent test -Dtest=UndoCostBenchmark -Dsiterecovery.bench.mib=128}.
 */
class UndoCostBenchmark {
  private static final long MIB = 1L << 20;

  @TempDir Path tmp;

  @Test
  void applyWithAndWithoutUndo() throws IOException {
    int logMib = Integer.getInteger("siterecovery.bench.mib", 128);
    // ReplicaStore logs how long the undo capture and the apply took
    ((ch.qos.logback.classic.Logger) org.slf4j.LoggerFactory.getLogger(ReplicaStore.class))
        .setLevel(ch.qos.logback.classic.Level.DEBUG);
    long size = 2L * logMib * MIB;
    try (AgentPair agents = AgentPair.start(tmp)) {
      for (String vm : List.of("plain", "undo")) {
        agents.p.createVm(vm, List.of(size));
        fill(agents.primary.vms().get(vm).disk("disk0"), new Random(1)); // before tracking
        agents.p.enableProtection(vm, "secondary");
        for (long at = 0; at < size; at += 64 * MIB) {
          agents.p.copyRange(vm, "disk0", at, 64 * MIB);
        }
        agents.p.replicate(vm);
      }
      agents.p.completeInitialReplication("undo"); // only this one keeps undo data from now on

      System.out.printf("%nUndo cost, %d MiB disk, replica data dir %s%n", size / MIB, tmp);
      System.out.printf("%-22s %-6s %9s %9s %10s %9s%n", "workload", "replica", "log MiB",
          "apply s", "MiB/s", "undo MiB");
      String[][] workloads = {{"1 MiB writes", "1048576"}, {"4 KiB random writes", "4096"}};
      for (int round = 0; round < 2; round++) {
        for (String[] w : workloads) {
          double[] rate = new double[2];
          // alternate the order between rounds so that neither side always goes first
          List<String> order = round == 0 ? List.of("plain", "undo") : List.of("undo", "plain");
          for (String vm : order) {
            VirtualDisk d = agents.primary.vms().get(vm).disk("disk0");
            writeLog(d, logMib * MIB, Integer.parseInt(w[1]), new Random(10 + round));
            long g = d.withWritesHeld(() -> d.tracker().swap());
            Path log = d.image().resolveSibling(HrlFormat.fileName("disk0", g));
            long dataBytes = HrlReader.verifySealed(log).dataBytes();
            agents.feed.sendLog(vm, "disk0", g, log);
            long start = System.nanoTime();
            var r = agents.feed.applyLogs(vm, new ApplyRequest(g, Instant.now(), false, null));
            double seconds = (System.nanoTime() - start) / 1e9;
            d.tracker().deleteSealed(g);
            List<RecoveryPointInfo> points = r.replica().points();
            long undo = points.get(points.size() - 1).undoBytes();
            double mibPerS = dataBytes / (double) MIB / seconds;
            rate[vm.equals("plain") ? 0 : 1] = mibPerS;
            System.out.printf("%-22s %-6s %9.1f %9.2f %10.1f %9.1f%n", w[0], vm,
                dataBytes / (double) MIB, seconds, mibPerS, undo / (double) MIB);
          }
          System.out.printf("%-22s apply rate with undo / without: %.2f%n", w[0],
              rate[1] / rate[0]);
        }
      }
    }
  }

  private static void fill(VirtualDisk d, Random rnd) throws IOException {
    byte[] b = new byte[(int) (4 * MIB)];
    for (long at = 0; at < d.size(); at += b.length) {
      rnd.nextBytes(b);
      d.write(at, ByteBuffer.wrap(b), false);
    }
    d.flush();
  }

  /** Writes {@code total} bytes in writes of {@code length} at random aligned offsets. */
  private static void writeLog(VirtualDisk d, long total, int length, Random rnd)
      throws IOException {
    byte[] b = new byte[length];
    rnd.nextBytes(b);
    long slots = d.size() / length;
    for (long done = 0; done < total; done += length) {
      b[0]++; // different data each time, without generating random bytes per write
      d.write(rnd.nextLong(slots) * length, ByteBuffer.wrap(b), false);
    }
  }
}
