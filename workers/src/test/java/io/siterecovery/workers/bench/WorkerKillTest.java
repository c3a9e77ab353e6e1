package io.siterecovery.workers.bench;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A worker killed with {@code kill -9} in the middle of a copy (a real worker process, the
 * embedded Temporal server, two agents): the copy runs again within 30 s, sends again at most one
 * heartbeat interval of data, and the replica equals the source. Unlike the benchmarks' ratios
 * these are behaviour, not speed: the server notices the lost worker at the 15 s heartbeat
 * timeout and retries 5 s later, so 30 s leaves 10 s for a slow machine.
 */
class WorkerKillTest {
  @TempDir Path dir;

  @Test
  void aKilledWorkersCopyResumesWithinThirtySecondsSendingAtMostOneHeartbeatAgain()
      throws Exception {
    ByteArrayOutputStream printed = new ByteArrayOutputStream();
    List<Measured> rows = new WorkerKillBench(dir, new PrintStream(printed, true))
        .run(48L << 20);
    System.out.print(printed);
    rows.forEach(r -> System.out.println(r.row()));
    assertThat(rows).hasSize(2);
    assertThat(rows).allSatisfy(row -> assertThat(row.met()).as(row.row()).isTrue());
  }
}
