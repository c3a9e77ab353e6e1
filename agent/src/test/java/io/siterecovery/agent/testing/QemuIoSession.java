package io.siterecovery.agent.testing;

import java.io.IOException;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

/**
 * An interactive qemu-io connected to one NBD export, for tests that need a client which stays
 * connected (power-off, kill -9). qemu-io handles one command per wake-up of its stdin and prints
 * its prompt when it is ready for the next, so commands are sent one at a time and each one is
 * complete when the next prompt appears.
 */
public final class QemuIoSession implements AutoCloseable {
  private static final Duration WAIT = Duration.ofSeconds(30);
  private static final String PROMPT = "qemu-io> ";

  private final Process process;
  private final Writer stdin;
  private final ProcessOutput output;
  private int completed;
  private int mark;

  private QemuIoSession(Process process) {
    this.process = process;
    this.stdin = new OutputStreamWriter(process.getOutputStream(), StandardCharsets.UTF_8);
    this.output = ProcessOutput.drain(process);
  }

  public static QemuIoSession open(String nbdUri) throws IOException {
    QemuIoSession session = new QemuIoSession(new ProcessBuilder("qemu-io", "-f", "raw", nbdUri)
        .redirectErrorStream(true).start());
    session.mark = session.output.awaitOccurrences(PROMPT, 1, WAIT).length();
    return session;
  }

  /** Sends one command, waits until it is done and returns what it printed. */
  public String command(String command) throws IOException {
    stdin.write(command + "\n");
    stdin.flush();
    completed++;
    String all = output.awaitOccurrences(PROMPT, completed + 1, WAIT);
    String printed = all.substring(mark);
    mark = all.length();
    return printed;
  }

  /** Sends a command that must succeed (no "failed" in what it printed). */
  public String ok(String command) throws IOException {
    String printed = command(command);
    if (printed.contains("failed")) {
      throw new AssertionError("qemu-io: " + command + " -> " + printed);
    }
    return printed;
  }

  public String output() {
    return output.text();
  }

  @Override
  public void close() throws InterruptedException {
    process.destroyForcibly();
    process.waitFor();
  }
}
