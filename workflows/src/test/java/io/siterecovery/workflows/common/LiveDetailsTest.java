package io.siterecovery.workflows.common;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.workflows.protection.Progress;
import io.siterecovery.workflows.protection.RecoveryPoint;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;

class LiveDetailsTest {
  private static final Instant AS_OF = Instant.parse("2026-11-30T00:30:00.250Z");
  private static final long GIB = 1L << 30;

  @Test
  void progressBarFillsOneMarkPerFivePercentRoundedDown() {
    assertThat(LiveDetails.progressBar(0, 100)).isEqualTo("[--------------------]   0 %");
    assertThat(LiveDetails.progressBar(57, 100)).isEqualTo("[###########---------]  57 %");
    assertThat(LiveDetails.progressBar(999, 1000)).isEqualTo("[###################-]  99 %");
    assertThat(LiveDetails.progressBar(100, 100)).isEqualTo("[####################] 100 %");
  }

  @Test
  void progressBarStaysInItsBoundsWhateverItIsGiven() {
    assertThat(LiveDetails.progressBar(5, 0)).isEqualTo("[--------------------]   0 %");
    assertThat(LiveDetails.progressBar(-5, 100)).isEqualTo("[--------------------]   0 %");
    assertThat(LiveDetails.progressBar(150, 100)).isEqualTo("[####################] 100 %");
    assertThat(LiveDetails.progressBar(3 * GIB * 1024, 4 * GIB * 1024))
        .isEqualTo("[###############-----]  75 %");
  }

  @Test
  void aCopyUnderWayShowsStateBarRateAndEta() {
    String md = LiveDetails.of("INITIAL_REPLICATION").health(Health.NORMAL, List.of())
        .progress(new Progress("INITIAL_REPLICATION", "disk1", 3 * GIB / 2, 3 * GIB,
            50.0 * (1 << 20), 31L))
        .render(AS_OF);

    assertThat(md).isEqualTo("""
        **INITIAL_REPLICATION** · health **NORMAL**

        - Progress: `[##########----------]  50 %` 1.5 GiB of 3.0 GiB (INITIAL_REPLICATION, disk1)
        - Rate: 50.0 MiB/s · ETA 31 s (2026-11-30T00:30:31Z)
        - Updated: 2026-11-30T00:30:00Z""");
  }

  @Test
  void aCopyWithoutARateYetSaysSo() {
    String md = LiveDetails.of("RESYNCING")
        .progress(new Progress("RESYNC", null, 0, 3 * GIB, 0, null)).render(AS_OF);

    assertThat(md).contains("- Progress: `[--------------------]   0 %` 0 B of 3.0 GiB (RESYNC)")
        .contains("- Rate: not measured yet\n").doesNotContain("ETA");
  }

  @Test
  void protectionShowsRpoLatestPointTheFirstHealthReasonAndFurtherLines() {
    String md = LiveDetails.of("PROTECTED")
        .health(Health.WARNING, List.of("RPO 200 s exceeds the policy's 120 s", "second"))
        .rpo(200L, RecoveryPoint.of(7, Instant.parse("2026-11-30T00:26:40.500Z"), true))
        .line("Cycle", "next delta cycle due at 2026-11-30T00:30:30Z")
        .line("Last", null)
        .render(AS_OF);

    assertThat(md).isEqualTo("""
        **PROTECTED** · health **WARNING**: RPO 200 s exceeds the policy's 120 s

        - RPO: 3 min 20 s · latest point rp-7 at 2026-11-30T00:26:40Z, app-consistent
        - Cycle: next delta cycle due at 2026-11-30T00:30:30Z
        - Updated: 2026-11-30T00:30:00Z""");
  }

  @Test
  void longTextsAreCutToOneShortLine() {
    String md = LiveDetails.of("FAILED").line("Error", "x".repeat(500) + "\nsecond line")
        .render(AS_OF);

    String error = md.lines().filter(l -> l.startsWith("- Error: ")).findFirst().orElseThrow();
    assertThat(error).hasSize("- Error: ".length() + LiveDetails.MAX_TEXT).endsWith("…");
  }

  @Test
  void durationsReadAsAPersonWouldSayThem() {
    assertThat(LiveDetails.duration(45)).isEqualTo("45 s");
    assertThat(LiveDetails.duration(725)).isEqualTo("12 min 5 s");
    assertThat(LiveDetails.duration(12_000)).isEqualTo("3 h 20 min");
  }
}
