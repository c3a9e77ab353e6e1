package io.siterecovery.workers.cli;

import java.util.concurrent.Callable;
import picocli.AutoComplete;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** {@code source <(./site-recovery completion)}: tab completion of verbs and options in bash. */
@Command(name = "completion", description = "Print a bash completion script for site-recovery "
    + "(bash and zsh with bashcompinit): source <(./site-recovery completion)")
final class CompletionCommand implements Callable<Integer> {
  @Spec
  CommandSpec spec;

  @Override
  public Integer call() {
    String name = spec.root().name();
    String script = AutoComplete.bash(name, spec.root().commandLine());
    // The README runs it as ./site-recovery: bash looks completions up by the word as typed.
    System.out.print(script);
    System.out.printf("complete -F _complete_%s -o default ./%s%n", name, name);
    return 0;
  }
}
