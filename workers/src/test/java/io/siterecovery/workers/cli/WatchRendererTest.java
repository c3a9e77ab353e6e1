package io.siterecovery.workers.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.workers.cli.WatchRenderer.Frame;
import io.siterecovery.workers.cli.WatchRenderer.Outcome;
import io.siterecovery.workflows.common.Health;
import io.siterecovery.workflows.failback.FailbackState;
import io.siterecovery.workflows.failback.FailbackStatus;
import io.siterecovery.workflows.failover.FailoverState;
import io.siterecovery.workflows.failover.FailoverStatus;
import io.siterecovery.workflows.failover.FailoverType;
import io.siterecovery.workflows.plan.PlanOperation;
import io.siterecovery.workflows.plan.PlanState;
import io.siterecovery.workflows.plan.PlanStatus;
import io.siterecovery.workflows.plan.PlanStatus.GroupStatus;
import io.siterecovery.workflows.plan.PlanStatus.VmStatus;
import io.siterecovery.workflows.protection.Progress;
import io.siterecovery.workflows.protection.ProtectionState;
import io.siterecovery.workflows.protection.ProtectionStatus;
import io.siterecovery.workflows.protection.RecoveryPoint;
import io.siterecovery.workflows.reprotect.ReprotectState;
import io.siterecovery.workflows.reprotect.ReprotectStatus;
import io.siterecovery.workflows.reprotect.ReverseMode;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** {@code --watch} as drawn from a made-up run of polls, on a terminal and in a log. */
class WatchRendererTest {
  private static final long MIB = 1 << 20;
  private static final Instant T = Instant.parse("2026-11-29T10:00:00Z");

  private static ProtectionStatus protection(ProtectionState state, Progress progress,
      List<String> notes) {
    RecoveryPoint point = state == ProtectionState.PROTECTED ? RecoveryPoint.of(1, T, false)
        : null;
    return new ProtectionStatus("web01", "default", state, Health.NORMAL, List.of(), "primary",
        "secondary", point == null ? null : 2L, point, point == null ? List.of()
            : List.of(point), progress, null, null, notes, 0, 0, 0, null, null);
  }

  /** A protection from ENABLING to PROTECTED, one poll a second: seconds, status. */
  private static List<ProtectionStatus> protectRun() {
    List<String> notes = new ArrayList<>();
    List<ProtectionStatus> run = new ArrayList<>();
    run.add(protection(ProtectionState.ENABLING, null, List.copyOf(notes)));
    for (int mib = 0; mib <= 64; mib += 8) {
      run.add(protection(ProtectionState.INITIAL_REPLICATION, new Progress("initial copy",
          "disk0", mib * MIB, 64 * MIB, 8e6, (64L - mib) / 8), List.copyOf(notes)));
    }
    notes.add(T + " initial copy done: 67108864 bytes read");
    run.add(protection(ProtectionState.PROTECTED, null, List.copyOf(notes)));
    return run;
  }

  private static String render(boolean terminal, List<Frame> frames) {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    long[] clock = {0};
    WatchRenderer r = new WatchRenderer(new PrintStream(bytes, true, StandardCharsets.UTF_8),
        terminal, () -> clock[0], Duration.ofSeconds(5));
    for (Frame f : frames) {
      r.show(f);
      clock[0] += Duration.ofSeconds(1).toNanos();
    }
    return bytes.toString(StandardCharsets.UTF_8);
  }

  @Test
  void inALogEachStepIsOneLineAndProgressAtMostEveryFiveSeconds() {
    List<Frame> frames = protectRun().stream().map(Watch::protect).toList();
    assertThat(frames.get(frames.size() - 1).outcome()).isEqualTo(Outcome.REACHED);
    assertThat(frames.subList(0, frames.size() - 1)).allMatch(f -> f.outcome() == null);

    String log = render(false, frames);
    assertThat(log).doesNotContain("\r", "\u001b", "[#");
    List<String> lines = log.lines().toList();
    assertThat(lines).containsSubsequence("state ENABLING",
        "state INITIAL_REPLICATION",
        "  initial copy disk0   0%  0 / 64 MiB  8 MB/s  ETA 8 s",
        "  initial copy disk0  63%  40 / 64 MiB  8 MB/s  ETA 3 s",
        "state PROTECTED",
        "  " + T + " initial copy done: 67108864 bytes read",
        "  latest point rp-1, RPO 2 s");
    assertThat(lines).filteredOn(l -> l.contains("initial copy done")).hasSize(1);
    assertThat(lines).filteredOn(l -> l.contains("MiB")).as("9 progress polls in 9 s")
        .hasSize(2);
  }

  @Test
  void onATerminalTheBarIsRedrawnInPlaceUnderTheSteps() {
    String screen = render(true, protectRun().stream().map(Watch::protect).toList());
    assertThat(screen).contains("\r\u001b[2K[" + "#".repeat(12) + ".".repeat(12)
        + "] INITIAL_REPLICATION  initial copy disk0  50%  32 / 64 MiB  8 MB/s"
        + "  ETA 4 s");
    // Every poll redraws the bar; a step goes above it, printed once, and the last bar stays.
    assertThat(screen.split("\u001b\\[2K", -1)).hasSize(11);
    assertThat(screen.split("initial copy done", -1)).hasSize(2);
    assertThat(screen).endsWith("[" + "#".repeat(24) + "] PROTECTED  latest "
        + "point rp-1, RPO 2 s\n");
    assertThat(screen).contains("\u001b[2Kstate PROTECTED\n  " + T
        + " initial copy done");
  }

  @Test
  void stoppedMidwayTheBarsLineIsEndedOnce() {
    ByteArrayOutputStream bytes = new ByteArrayOutputStream();
    WatchRenderer r = new WatchRenderer(new PrintStream(bytes, true, StandardCharsets.UTF_8),
        true, () -> 0, Duration.ofSeconds(5));
    r.show(Watch.protect(protectRun().get(3)));
    assertThat(bytes.toString(StandardCharsets.UTF_8)).doesNotEndWith("\n");
    r.leaveLine();
    r.leaveLine();
    assertThat(bytes.toString(StandardCharsets.UTF_8)).endsWith("ETA 6 s\n");
  }

  @Test
  void aFailoverIsWatchedUntilItAwaitsCommitWithEachStepOnce() {
    List<String> steps = new ArrayList<>();
    List<Frame> frames = new ArrayList<>();
    for (FailoverState state : List.of(FailoverState.VALIDATING, FailoverState.VALIDATING,
        FailoverState.SHUTTING_DOWN_SOURCE, FailoverState.SYNCHRONIZING,
        FailoverState.STARTING_REPLICA, FailoverState.AWAITING_COMMIT)) {
      steps.add(T + " " + state.name().toLowerCase().replace('_', ' '));
      frames.add(Watch.failover(new FailoverStatus("web01", FailoverType.PLANNED, state,
          "primary", "secondary", null, List.copyOf(steps), null, T, null, null, null,
          List.of(), null), T.plusSeconds(frames.size())));
    }
    assertThat(frames.get(2).fraction()).isEqualTo(0.25);
    assertThat(frames.get(2).detail()).isEqualTo("step 2 of 5, elapsed 2 s");
    assertThat(frames.get(5).outcome()).isEqualTo(Outcome.REACHED);

    String log = render(false, frames);
    assertThat(log.lines().toList()).containsSubsequence("state VALIDATING",
        "  " + T + " validating", "state SHUTTING_DOWN_SOURCE", "  " + T + " shutting down source",
        "state AWAITING_COMMIT", "  " + T + " awaiting commit");
    assertThat(log.split("validating", -1)).as("the step repeated in every poll, shown once")
        .hasSize(2);
  }

  @Test
  void aPlanIsWatchedUntilItWaitsForTheOperatorWithItsEtaAsOfNow() {
    PlanStatus running = plan(PlanState.RUNNING, null, List.of(T + " group db started"));
    Frame first = Watch.plan(running, T.plusSeconds(60));
    assertThat(first.outcome()).isNull();
    assertThat(first.fraction()).isEqualTo(0.5);
    assertThat(first.detail()).isEqualTo("0 of 1 VM(s) ready, elapsed 60 s, ETA 60 s");

    Frame waiting = Watch.plan(plan(PlanState.AWAITING_APPROVAL, "confirm DB",
        List.of(T + " group db started", T + " waiting for approval of: confirm DB")),
        T.plusSeconds(90));
    assertThat(waiting.outcome()).isEqualTo(Outcome.REACHED);
    assertThat(render(false, List.of(first, waiting)).lines().toList()).containsExactly(
        "state RUNNING", "  " + T + " group db started", "  0 of 1 VM(s) ready, elapsed 60 s, "
            + "ETA 60 s", "state AWAITING_APPROVAL", "  " + T + " waiting for approval of: "
            + "confirm DB", "  0 of 1 VM(s) ready, elapsed 90 s, ETA 30 s, waiting for approval"
            + " of: confirm DB");
  }

  /** A one-VM plan's run, its status last stamped at T+60 s with 60 s to go. */
  private static PlanStatus plan(PlanState state, String awaiting, List<String> steps) {
    return new PlanStatus("shop", PlanOperation.TEST_FAILOVER, state, awaiting, null, List.of(
        new GroupStatus("db", "RUNNING", List.of(new VmStatus("db01", "test-failover-db01",
            "CREATING_TEST_VM", null, null, null, T, null, null, 60L, 60L)), List.of(), T, null,
            60L, 60L)), steps, List.of(), T, null, null, T.plusSeconds(60), 60L, 60L,
        "run 1f2e", null);
  }

  @Test
  void reprotectShowsTheReverseCopyAndEndsWhenProtected() {
    Frame sending = Watch.reprotect(new ReprotectStatus("web01", ReprotectState.SENDING_CHANGES,
        "secondary", "primary", ReverseMode.CHANGED_RANGES, 8 * MIB, 2 * MIB, null,
        new Progress("changed ranges", "disk0", 2 * MIB, 8 * MIB, 4e6, 2L), List.of(), null, T));
    assertThat(sending.fraction()).isEqualTo(0.25);
    assertThat(sending.detail()).isEqualTo("changed ranges disk0  25%  2 / 8 MiB  4 MB/s  ETA 2 s");
    assertThat(sending.outcome()).isNull();
    Frame done = Watch.reprotect(new ReprotectStatus("web01", ReprotectState.PROTECTED,
        "secondary", "primary", ReverseMode.CHANGED_RANGES, 8 * MIB, 8 * MIB, null, null,
        List.of(), null, T));
    assertThat(done.outcome()).isEqualTo(Outcome.REACHED);
    assertThat(done.fraction()).isEqualTo(1.0);
  }

  @Test
  void failbackStopsWhenItsFailoverAwaitsCommitShowingTheFailoversSteps() {
    FailbackStatus failingOver = new FailbackStatus("web01", FailbackState.FAILING_OVER,
        "primary", "secondary", null, null, List.of(T + " failover-web01 started"), null, T);
    assertThat(Watch.failback(failingOver, null, T).outcome()).as("its failover not yet there")
        .isNull();
    FailoverStatus awaiting = new FailoverStatus("web01", FailoverType.PLANNED,
        FailoverState.AWAITING_COMMIT, "secondary", "primary", null, List.of(T
            + " awaiting 'commit' or 'cancel'"), null, T, null, null, null, List.of(), null);
    Frame f = Watch.failback(failingOver, awaiting, T.plusSeconds(4));
    assertThat(f.outcome()).isEqualTo(Outcome.REACHED);
    assertThat(f.state()).isEqualTo("FAILING_OVER (failover AWAITING_COMMIT)");
    assertThat(f.steps()).containsExactly(T + " failover-web01 started",
        "failover-web01: " + T + " awaiting 'commit' or 'cancel'");
  }
}
