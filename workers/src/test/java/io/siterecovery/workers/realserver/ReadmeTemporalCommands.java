package io.siterecovery.workers.realserver;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;

/**
 * The {@code temporal} commands of README.md's block that follows "The same workflows can be
 * started with the `temporal` CLI", read at test time so that the README cannot rot: a command
 * the tests run is the one an operator copies. Each command is split into words as a shell would
 * (backslash continuations joined, single and double quotes removed).
 */
final class ReadmeTemporalCommands {
  static final String ANCHOR = "The same workflows can be started with the `temporal` CLI";

  private final List<List<String>> commands;
  private final Set<List<String>> run = new LinkedHashSet<>();

  private ReadmeTemporalCommands(List<List<String>> commands) {
    this.commands = commands;
  }

  static ReadmeTemporalCommands load(Path readme) throws IOException {
    String text = Files.readString(readme);
    int anchor = text.indexOf(ANCHOR);
    if (anchor < 0) {
      throw new IllegalStateException(readme + " no longer says \"" + ANCHOR
          + "\": the real-server tests run the `temporal` commands of the block after it");
    }
    int open = text.indexOf("```bash\n", anchor);
    int close = open < 0 ? -1 : text.indexOf("\n```", open + 8);
    if (open < 0 || close < 0) {
      throw new IllegalStateException("no ```bash block after \"" + ANCHOR + "\" in " + readme);
    }
    List<List<String>> commands = new ArrayList<>();
    for (String line : text.substring(open + 8, close).replace("\\\n", " ").split("\n")) {
      if (line.isBlank() || line.trim().startsWith("#")) {
        continue;
      }
      List<String> words = words(line);
      if (!words.get(0).equals("temporal")) {
        throw new IllegalStateException("not a temporal command in README's block: " + line);
      }
      commands.add(words);
    }
    if (commands.isEmpty()) {
      throw new IllegalStateException("README's block after \"" + ANCHOR + "\" is empty");
    }
    return new ReadmeTemporalCommands(commands);
  }

  /** The one command whose text holds every fragment; it counts as run. */
  List<String> take(String... fragments) {
    List<List<String>> matching = commands.stream()
        .filter(c -> List.of(fragments).stream().allMatch(String.join(" ", c)::contains))
        .toList();
    if (matching.size() != 1) {
      throw new IllegalStateException(matching.size() + " of README's temporal commands contain "
          + List.of(fragments) + ": " + commands.stream().map(c -> String.join(" ", c)).toList());
    }
    run.add(matching.get(0));
    return matching.get(0);
  }

  /** README's commands that the scenario has not taken. */
  List<String> notRun() {
    return commands.stream().filter(c -> !run.contains(c)).map(c -> String.join(" ", c))
        .toList();
  }

  int size() {
    return commands.size();
  }

  /** Words as the shell splits them: blanks separate, quotes group and are dropped. */
  static List<String> words(String line) {
    List<String> words = new ArrayList<>();
    StringBuilder word = null;
    char quote = 0;
    for (char c : line.toCharArray()) {
      if (quote != 0) {
        if (c == quote) {
          quote = 0;
        } else {
          word.append(c);
        }
      } else if (c == '\'' || c == '"') {
        quote = c;
        word = word == null ? new StringBuilder() : word;
      } else if (Character.isWhitespace(c)) {
        if (word != null) {
          words.add(word.toString());
          word = null;
        }
      } else {
        word = word == null ? new StringBuilder() : word;
        word.append(c);
      }
    }
    if (quote != 0) {
      throw new IllegalStateException("unbalanced quote in README's command: " + line);
    }
    if (word != null) {
      words.add(word.toString());
    }
    return words;
  }
}
