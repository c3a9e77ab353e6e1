package io.siterecovery.workers.cli;

import ch.qos.logback.classic.Logger;
import ch.qos.logback.classic.spi.ILoggingEvent;
import ch.qos.logback.core.Appender;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.slf4j.LoggerFactory;

/**
 * Runs the CLI in this process as main would, with what it prints to stdout and stderr; as in
 * main, logs (here also the embedded stack's) stay off stdout meanwhile.
 */
public record CliRun(int exit, String out, String err) {
  public static CliRun of(String... args) {
    Logger root = (Logger) LoggerFactory.getLogger(org.slf4j.Logger.ROOT_LOGGER_NAME);
    Appender<ILoggingEvent> console = root.getAppender("OUT");
    if (console != null) {
      root.detachAppender(console);
    }
    PrintStream out = System.out;
    PrintStream err = System.err;
    ByteArrayOutputStream outBytes = new ByteArrayOutputStream();
    ByteArrayOutputStream errBytes = new ByteArrayOutputStream();
    System.setOut(new PrintStream(outBytes, true, StandardCharsets.UTF_8));
    System.setErr(new PrintStream(errBytes, true, StandardCharsets.UTF_8));
    try {
      int exit = SiteRecoveryCli.commandLine().execute(args);
      return new CliRun(exit, outBytes.toString(StandardCharsets.UTF_8),
          errBytes.toString(StandardCharsets.UTF_8));
    } finally {
      System.setOut(out);
      System.setErr(err);
      if (console != null) {
        root.addAppender(console);
      }
    }
  }
}
