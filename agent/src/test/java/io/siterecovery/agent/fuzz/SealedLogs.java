package io.siterecovery.agent.fuzz;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.hrl.HrlRecord;
import java.io.IOException;
import java.nio.file.Path;

/** What every log the agent accepts as sealed must satisfy, whoever sent it. */
final class SealedLogs {
  private SealedLogs() {}

  /**
   * Every record of a log that verified as sealed lies inside the disk its header names (the end
   * computed with Math.addExact: an overflow fails too), has data exactly for a WRITE, and the
   * records add up to what the scan counted.
   */
  static void assertRecordsInsideTheDisk(Path log, HrlReader.Scan scan) throws IOException {
    long diskSize = scan.header().diskSize();
    long[] seen = new long[2]; // records, data bytes
    HrlReader.Scan applied = HrlReader.applySealed(log, (HrlRecord r) -> {
      assertThat(r.offset()).isNotNegative();
      assertThat(r.length()).isNotNegative();
      assertThat(Math.addExact(r.offset(), r.length())).isLessThanOrEqualTo(diskSize);
      if (r.isZero()) {
        assertThat(r.data()).isNull();
      } else {
        assertThat(r.length()).isLessThanOrEqualTo(HrlFormat.MAX_RECORD_LENGTH);
        assertThat(r.data().remaining()).isEqualTo(r.length());
        seen[1] += r.length();
      }
      seen[0]++;
    });
    assertThat(applied).usingRecursiveComparison().ignoringFields("fileCrc").isEqualTo(scan);
    assertThat(seen).containsExactly(scan.records(), scan.dataBytes());
  }
}
