package io.siterecovery.workers.cli;

import io.siterecovery.workers.dev.ProgressLine;
import java.io.PrintStream;
import java.time.Duration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.LongSupplier;

/**
 * Draws a workflow's status as it is polled, for {@code --watch}. On a terminal: each new step
 * and state printed once, under a progress bar line redrawn in place. Anywhere else (a pipe, a
 * CI log): plain lines without control characters, progress at most once per
 * {@code plainEvery}, so a log stays readable.
 */
final class WatchRenderer {
  /** Kept short of a usual terminal's width: a wrapped line cannot be redrawn in place. */
  private static final int LINE_WIDTH = 110;
  private static final int BAR_WIDTH = 24;
  private static final String CLEAR_LINE = "\r\u001b[2K";

  /**
   * One poll, rendered: {@code fraction} (0..1) and {@code detail} (percent, rate, ETA) may be
   * null when the workflow is in no measurable phase; {@code outcome} is null while watching
   * goes on.
   */
  record Frame(String state, List<String> steps, Double fraction, String detail,
      Outcome outcome) {}

  /**
   * Why watching ends: the state the verb is for (or where the operator acts next), or one from
   * which the workflow will not get there (failed, disabled, closed).
   */
  enum Outcome { REACHED, NOT_REACHED }

  private final PrintStream out;
  private final boolean terminal;
  private final LongSupplier nanoTime;
  private final Duration plainEvery;
  private final Set<String> stepsShown = new HashSet<>();
  private String state;
  private String detailShown;
  private long detailShownAt;
  private boolean barOnScreen;

  WatchRenderer(PrintStream out, boolean terminal, LongSupplier nanoTime, Duration plainEvery) {
    this.out = out;
    this.terminal = terminal;
    this.nanoTime = nanoTime;
    this.plainEvery = plainEvery;
  }

  /**
   * For this process: a terminal when there is a console to redraw on; stopped with Ctrl-C, it
   * ends the bar's line so the shell's prompt starts on a line of its own.
   */
  static WatchRenderer forConsole(PrintStream out) {
    WatchRenderer r = new WatchRenderer(out, System.console() != null, System::nanoTime,
        Duration.ofSeconds(5));
    Runtime.getRuntime().addShutdownHook(new Thread(r::leaveLine, "watch-end-line"));
    return r;
  }

  /** Ends the bar's line if one is on screen: watching stops without a last frame. */
  synchronized void leaveLine() {
    if (barOnScreen) {
      out.println();
      out.flush();
      barOnScreen = false;
    }
  }

  synchronized void show(Frame f) {
    if (barOnScreen) {
      out.print(CLEAR_LINE);
      barOnScreen = false;
    }
    if (!f.state().equals(state)) {
      state = f.state();
      out.println("state " + state);
    }
    for (String step : f.steps()) {
      if (stepsShown.add(step)) {
        out.println("  " + step);
      }
    }
    if (terminal) {
      drawBar(f);
    } else {
      printProgress(f);
    }
    out.flush();
  }

  private void drawBar(Frame f) {
    String line = (f.fraction() == null ? "" : ProgressLine.bar(f.fraction(), BAR_WIDTH) + " ")
        + f.state() + (f.detail() == null ? "" : "  " + f.detail());
    if (f.outcome() != null) {
      out.println(line);
      return;
    }
    out.print(line.length() > LINE_WIDTH ? line.substring(0, LINE_WIDTH - 1) + "~" : line);
    barOnScreen = true;
  }

  private void printProgress(Frame f) {
    if (f.detail() == null || f.detail().equals(detailShown)) {
      return;
    }
    long now = nanoTime.getAsLong();
    boolean due = detailShown == null || now - detailShownAt >= plainEvery.toNanos();
    if (due || f.outcome() != null) {
      out.println("  " + f.detail());
      detailShown = f.detail();
      detailShownAt = now;
    }
  }
}
