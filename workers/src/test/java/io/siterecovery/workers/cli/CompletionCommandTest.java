package io.siterecovery.workers.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code source <(./site-recovery completion)}: a script bash accepts, completing the verbs. */
class CompletionCommandTest {
  @TempDir
  Path dir;

  private static String bash(String... args) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(List.of(args)).redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    assertThat(p.waitFor(30, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as(String.join(" ", args) + ": " + out).isZero();
    return out;
  }

  @Test
  void theScriptIsValidBashAndCompletesVerbsAndOptions() throws Exception {
    assumeTrue(new File("/bin/bash").canExecute(), "skipped: no /bin/bash to run the script");
    CliRun run = CliRun.of("completion");
    assertThat(run.exit()).isZero();
    Path script = dir.resolve("site-recovery.bash");
    Files.writeString(script, run.out());
    bash("/bin/bash", "-n", script.toString());

    String verbs = bash("/bin/bash", "-c", "source " + script + "; COMP_WORDS=(./site-recovery"
        + " sta); COMP_CWORD=1; COMP_LINE='./site-recovery sta'; COMP_POINT=${#COMP_LINE}; "
        + "complete -p ./site-recovery >/dev/null && _complete_site-recovery; "
        + "printf '%s\\n' \"${COMPREPLY[@]}\"");
    assertThat(verbs.lines().toList()).contains("status");

    String options = bash("/bin/bash", "-c", "source " + script + "; COMP_WORDS=(site-recovery"
        + " protect web01 --wa); COMP_CWORD=3; COMP_LINE='site-recovery protect web01 --wa'; "
        + "COMP_POINT=${#COMP_LINE}; _complete_site-recovery; "
        + "printf '%s\\n' \"${COMPREPLY[@]}\"");
    assertThat(options.lines().toList()).contains("--watch");
  }
}
