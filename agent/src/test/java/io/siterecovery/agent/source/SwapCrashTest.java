package io.siterecovery.agent.source;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.testing.TestCerts;
import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.ReplicationResult;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.testing.AgentPair;
import io.siterecovery.agent.vm.Vm;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A swap seals the logs of all disks of a VM at one instant. If the agent dies after sealing some
 * disks and before the others, the disks come back on different generations; the agent must line
 * them up again, or every later cycle finds a generation missing on some disk.
 */
class SwapCrashTest {
  private static final long SIZE = 4L << 20;

  @TempDir Path tmp;

  private static ByteBuffer filled(int length, int value) {
    byte[] b = new byte[length];
    Arrays.fill(b, (byte) value);
    return ByteBuffer.wrap(b);
  }

  @Test
  void aCrashBetweenTheSwapsOfTwoDisksIsRepairedOnRestart() throws IOException {
    Path primaryDir = tmp.resolve("primary");
    try (HostAgent secondary = AgentPair.start("secondary", tmp.resolve("secondary"))) {
      try (HostAgent primary = AgentPair.start("primary", primaryDir)) {
        primary.addPeer("secondary", secondary.url());
        AgentClient p = TestCerts.operatorClient(primary);
        p.createVm("web01", java.util.List.of(SIZE, SIZE));
        p.enableProtection("web01", "secondary");
        p.copyRange("web01", "disk0", 0, SIZE);
        p.copyRange("web01", "disk1", 0, SIZE);
        p.replicate("web01");
        p.completeInitialReplication("web01");

        Vm vm = primary.vms().get("web01");
        VirtualDisk disk0 = vm.disk("disk0");
        VirtualDisk disk1 = vm.disk("disk1");
        disk0.write(0, filled(4096, 0x10), true);
        disk1.write(0, filled(4096, 0x11), true);
        // the agent "dies" after sealing disk0's log and before sealing disk1's
        disk0.withWritesHeld(() -> disk0.tracker().swap());
        assertThat(disk0.tracker().activeGeneration()).isEqualTo(3);
        assertThat(disk1.tracker().activeGeneration()).isEqualTo(2);
      }

      try (HostAgent primary = AgentPair.start("primary", primaryDir)) {
        primary.addPeer("secondary", secondary.url());
        AgentClient p = TestCerts.operatorClient(primary);
        Vm vm = primary.vms().get("web01");
        assertThat(vm.disks()).extracting(d -> d.tracker().activeGeneration())
            .as("disks back on one generation").containsOnly(3L);

        vm.disk("disk0").write(8192, filled(4096, 0x20), true);
        vm.disk("disk1").write(8192, filled(4096, 0x21), true);
        ReplicationResult r = p.replicate("web01");
        assertThat(r.appliedGeneration()).isEqualTo(3);
        assertThat(p.replicate("web01").appliedGeneration()).isEqualTo(4);
        for (String disk : new String[] {"disk0", "disk1"}) {
          assertThat(Files.mismatch(primary.diskImage("web01", disk),
              secondary.diskImage("web01", disk))).as(disk).isEqualTo(-1L);
        }
      }
    }
  }
}
