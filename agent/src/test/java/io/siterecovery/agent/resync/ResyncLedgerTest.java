package io.siterecovery.agent.resync;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The resync's digest seed in the source's ledger: drawn at begin, kept until the resync ends. */
class ResyncLedgerTest {
  @TempDir Path vmDir;

  @Test
  void beginDrawsASeedThatTheResyncKeeps() {
    ResyncLedger.State begun = ResyncLedger.begin(vmDir, 7);
    assertThat(begun.seed()).isNotNull();
    long seed = begun.seed();
    ResyncLedger.recordStep(vmDir, 7, "disk0", 0, 1 << 20);
    ResyncLedger.markRequired(vmDir, "a sealed log failed verification");
    ResyncLedger.State loaded = ResyncLedger.load(vmDir);
    assertThat(loaded.seed()).as("read back from resync-source.json").isEqualTo(seed);
    assertThat(ResyncLedger.seed(vmDir, 7)).isEqualTo(seed);

    assertThat(ResyncLedger.begin(vmDir, 9).seed()).as("another resync, another seed")
        .isNotEqualTo(seed);
    assertThat(catchThrowableOfType(AgentException.class, () -> ResyncLedger.seed(vmDir, 7))
        .code()).isEqualTo(ErrorCode.INVALID_STATE);
  }

  @Test
  void aLedgerFromBeforeKeyedDigestsGetsASeedAtItsNextStep() throws Exception {
    Files.writeString(vmDir.resolve(ResyncLedger.FILE),
        "{\"generation\": 4, \"resyncedBytes\": {\"disk0\": 65536}}");
    assertThat(ResyncLedger.load(vmDir).seed()).isNull();
    long seed = ResyncLedger.seed(vmDir, 4);
    ResyncLedger.State after = ResyncLedger.load(vmDir);
    assertThat(after.seed()).as("kept for the steps that follow").isEqualTo(seed);
    assertThat(after.resynced("disk0")).as("progress survives").isEqualTo(65536);
    assertThat(ResyncLedger.seed(vmDir, 4)).isEqualTo(seed);
  }
}
