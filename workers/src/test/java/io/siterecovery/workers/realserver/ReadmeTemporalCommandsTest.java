package io.siterecovery.workers.realserver;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * README's block of {@code temporal} commands is found and split as a shell would, even where no
 * {@code temporal} binary lets the real-server tier run them.
 */
class ReadmeTemporalCommandsTest {
  @TempDir Path dir;

  @Test
  void readmesBlockIsFoundWithItsContinuationsJoinedAndQuotesRemoved() throws Exception {
    ReadmeTemporalCommands readme = ReadmeTemporalCommands.load(Path.of("..", "README.md"));
    assertThat(readme.take("--type ProtectVm")).containsExactly("temporal", "workflow", "start",
        "--task-queue", "site-recovery", "--type", "ProtectVm", "--workflow-id", "protect-web01",
        "--input", "{\"vm\":\"web01\",\"policy\":\"default\"}");
    assertThat(readme.notRun()).hasSize(readme.size() - 1);
  }

  @Test
  void aReadmeWithoutTheBlockFailsNamingWhatItLookedFor() throws Exception {
    Path readme = Files.writeString(dir.resolve("README.md"), "# nothing here\n");
    assertThatThrownBy(() -> ReadmeTemporalCommands.load(readme))
        .hasMessageContaining(ReadmeTemporalCommands.ANCHOR);
  }

  @Test
  void wordsFollowTheShellsQuoting() {
    assertThat(ReadmeTemporalCommands.words(
        "temporal workflow list --query \"VmName='web01'\"  --input '{\"a\": 1}'"))
        .containsExactly("temporal", "workflow", "list", "--query", "VmName='web01'",
            "--input", "{\"a\": 1}");
  }
}
