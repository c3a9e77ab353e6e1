package io.siterecovery.activities;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ProgressGateTest {
  private static final long SECOND = 1_000_000_000L;
  private static final long TIB = 1L << 40;

  @Test
  void aHugeDiskInManySlicesReportsAtMostOncePerPercentPlusTheEnd() {
    long size = 8 * TIB;
    long slice = 64L << 20; // 131,072 agent calls, one every 3 s: 4.5 days of copy
    ProgressGate gate = new ProgressGate(size, 0, 0);
    int reports = 0;
    long now = 0;
    for (long done = slice; done <= size; done += slice) {
      now += 3 * SECOND;
      if (gate.shouldReport(done, now)) {
        reports++;
      }
    }
    assertThat(reports).isEqualTo(100); // 1 % .. 99 %, then the end
  }

  @Test
  void aFastCopyReportsAtMostEveryTwoSecondsAndAlwaysItsEnd() {
    long size = 1L << 30;
    ProgressGate gate = new ProgressGate(size, 0, 0);
    int reports = 0;
    long now = 0;
    // 1,000 calls in 10 s: every call passes a percent, but reports keep 2 s apart.
    for (int i = 1; i <= 1000; i++) {
      now += SECOND / 100;
      if (gate.shouldReport(size * i / 1000, now)) {
        reports++;
      }
    }
    assertThat(reports).isEqualTo(5); // at 2, 4, 6, 8 s, and the end at 10 s
    assertThat(gate.shouldReport(size, now + 10 * SECOND)).isFalse();
  }

  @Test
  void aResumedCopyDoesNotReportThePercentItResumedAt() {
    long size = 100L << 20;
    ProgressGate gate = new ProgressGate(size, 50L << 20, 0);
    assertThat(gate.shouldReport((50L << 20) + 1, 10 * SECOND)).isFalse();
    assertThat(gate.shouldReport(51L << 20, 10 * SECOND)).isTrue();
  }
}
