package io.siterecovery.workflows.common;

import io.siterecovery.workflows.protection.Progress;
import io.siterecovery.workflows.protection.RecoveryPoint;
import io.temporal.workflow.Workflow;
import java.time.Duration;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * A workflow's current details as the Temporal Web UI and {@code temporal workflow describe}
 * show them (the built-in {@code __temporal_workflow_metadata} query): state, health, a progress
 * bar with rate and ETA, RPO and latest point, the current step, and when they were written.
 * Workflows set them wherever their state or progress changes; the details are not read at query
 * time, so they say as of when ("Updated"). Writing them adds nothing to the history.
 */
public final class LiveDetails {
  static final int BAR_WIDTH = 20;
  /** Long texts (an agent's error) are cut: the details are a glance, the status query has all. */
  static final int MAX_TEXT = 200;

  private final String state;
  private Health health;
  private String healthReason;
  private Progress progress;
  private Long rpoSeconds;
  private RecoveryPoint latestPoint;
  private final List<String> lines = new ArrayList<>();

  private LiveDetails(String state) {
    this.state = state;
  }

  public static LiveDetails of(Object state) {
    return new LiveDetails(String.valueOf(state));
  }

  /** The health and the first of its reasons (the status query lists them all). */
  public LiveDetails health(Health health, List<String> reasons) {
    this.health = health;
    this.healthReason = reasons == null || reasons.isEmpty() ? null : reasons.get(0);
    return this;
  }

  public LiveDetails progress(Progress progress) {
    this.progress = progress;
    return this;
  }

  public LiveDetails rpo(Long rpoSeconds, RecoveryPoint latestPoint) {
    this.rpoSeconds = rpoSeconds;
    this.latestPoint = latestPoint;
    return this;
  }

  /** A bar of things rather than bytes: {@code - VMs ready: `[####----]  50 %` 2 of 4}. */
  public LiveDetails count(String label, long done, long total) {
    lines.add("- " + label + ": `" + progressBar(done, total) + "` " + done + " of " + total);
    return this;
  }

  /** A further line, e.g. {@code ("Step", "replica VM started")}; skipped when text is null. */
  public LiveDetails line(String label, String text) {
    if (text != null && !text.isBlank()) {
      lines.add("- " + label + ": " + cut(text));
    }
    return this;
  }

  /** Sets these as the workflow's current details, as of the workflow's time. */
  public void show() {
    Workflow.setCurrentDetails(render(Instant.ofEpochMilli(Workflow.currentTimeMillis())));
  }

  /** Markdown: a bold state line, then one bullet per fact. */
  public String render(Instant asOf) {
    StringBuilder md = new StringBuilder("**").append(state).append("**");
    if (health != null) {
      md.append(" · health **").append(health).append("**");
      if (healthReason != null) {
        md.append(": ").append(cut(healthReason));
      }
    }
    // A blank line: not every Markdown renderer lets a list interrupt a paragraph.
    md.append("\n\n");
    if (progress != null) {
      md.append("- Progress: `").append(progressBar(progress.bytesDone(), progress.bytesTotal()))
          .append("` ").append(size(progress.bytesDone())).append(" of ")
          .append(size(progress.bytesTotal()));
      String where = progress.disk() == null ? progress.phase()
          : progress.phase() + ", " + progress.disk();
      if (where != null) {
        md.append(" (").append(where).append(')');
      }
      md.append('\n');
      md.append("- Rate: ").append(progress.bytesPerSecond() > 0
          ? rate(progress.bytesPerSecond()) : "not measured yet");
      if (progress.etaSeconds() != null) {
        md.append(" · ETA ").append(duration(progress.etaSeconds())).append(" (")
            .append(asOf.plusSeconds(progress.etaSeconds()).truncatedTo(ChronoUnit.SECONDS))
            .append(')');
      }
      md.append('\n');
    }
    if (rpoSeconds != null || latestPoint != null) {
      md.append("- RPO: ").append(rpoSeconds == null ? "none" : duration(rpoSeconds));
      if (latestPoint != null) {
        md.append(" · latest point ").append(latestPoint.id());
        if (latestPoint.time() != null) {
          md.append(" at ").append(latestPoint.time().truncatedTo(ChronoUnit.SECONDS));
        }
        md.append(latestPoint.appConsistent() ? ", app-consistent" : ", crash-consistent");
      }
      md.append('\n');
    }
    lines.forEach(l -> md.append(l).append('\n'));
    md.append("- Updated: ").append(asOf.truncatedTo(ChronoUnit.SECONDS));
    return md.toString();
  }

  /** {@code [########------------]  40 %}: whole percent, rounded down; 100 % only when done. */
  public static String progressBar(long done, long total) {
    int percent = total <= 0 ? 0
        : (int) Math.min(100, Math.max(0, Math.floorDiv(Math.multiplyExact(
            Math.max(0, done), 100L), total)));
    int filled = percent * BAR_WIDTH / 100;
    return "[" + "#".repeat(filled) + "-".repeat(BAR_WIDTH - filled) + "] "
        + String.format(Locale.ROOT, "%3d %%", percent);
  }

  public static String size(long bytes) {
    if (bytes >= 1L << 30) {
      return String.format(Locale.ROOT, "%.1f GiB", bytes / (double) (1L << 30));
    }
    if (bytes >= 1L << 20) {
      return String.format(Locale.ROOT, "%.1f MiB", bytes / (double) (1L << 20));
    }
    return bytes + " B";
  }

  static String rate(double bytesPerSecond) {
    return String.format(Locale.ROOT, "%.1f MiB/s", bytesPerSecond / (1 << 20));
  }

  /** {@code 45 s}, {@code 12 min 5 s}, {@code 3 h 20 min}. */
  public static String duration(long seconds) {
    Duration d = Duration.ofSeconds(Math.max(0, seconds));
    if (d.toHours() > 0) {
      return d.toHours() + " h " + d.toMinutesPart() + " min";
    }
    if (d.toMinutes() > 0) {
      return d.toMinutes() + " min " + d.toSecondsPart() + " s";
    }
    return d.toSeconds() + " s";
  }

  private static String cut(String text) {
    String oneLine = text.replace('\n', ' ');
    return oneLine.length() <= MAX_TEXT ? oneLine : oneLine.substring(0, MAX_TEXT - 1) + "…";
  }
}
