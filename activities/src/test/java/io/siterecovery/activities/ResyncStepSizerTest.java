package io.siterecovery.activities;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class ResyncStepSizerTest {
  private static final int BLOCK = 64 << 10;
  private static final long MS = 1_000_000L;

  @Test
  void aCappedLinkNeverAsksForMoreThanTheCapMovesInThreeSeconds() {
    ResyncStepSizer sizer = new ResyncStepSizer(BLOCK, 1.0); // 3 MB: 45 blocks if all differ
    for (int i = 0; i < 10; i++) {
      assertThat(sizer.nextBlocks()).isLessThanOrEqualTo(45);
      sizer.measured(sizer.nextBlocks(), 10 * MS); // the blocks were equal: fast
    }
    assertThat(sizer.nextBlocks()).isEqualTo(45);
  }

  @Test
  void growsAtMostFourfoldAStepToAboutThreeSecondsAndShrinksAtOnce() {
    ResyncStepSizer sizer = new ResyncStepSizer(BLOCK, null);
    assertThat(sizer.nextBlocks()).isEqualTo(64);
    sizer.measured(64, 10 * MS);
    assertThat(sizer.nextBlocks()).isEqualTo(256);
    sizer.measured(256, 10 * MS);
    sizer.measured(sizer.nextBlocks(), 10 * MS);
    assertThat(sizer.nextBlocks()).isEqualTo(ResyncStepSizer.MAX_BLOCKS);
    sizer.measured(ResyncStepSizer.MAX_BLOCKS, 12_000 * MS); // a region that all differs
    assertThat(sizer.nextBlocks()).isEqualTo(1024);
    sizer.measured(1024, 1_000_000 * MS);
    assertThat(sizer.nextBlocks()).isEqualTo(ResyncStepSizer.MIN_BLOCKS);
  }
}
