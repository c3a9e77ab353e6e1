package io.siterecovery.workers.chaos;

import java.time.Duration;
import java.util.List;

/**
 * One fault during one phase of a VM's protection, and how long recovery may take before the
 * run counts as not recovered.
 */
record Scenario(Fault fault, Phase phase, Duration faultLength, Duration limit) {

  enum Fault {
    /** SIGKILL of the worker JVM, started again at once (what a supervisor does). */
    WORKER_KILL,
    /** SIGKILL of the source site's agent, started again on the same ports and data. */
    SOURCE_AGENT_KILL,
    /** SIGKILL of the target site's agent, started again on the same ports and data. */
    REPLICA_AGENT_KILL,
    /** No byte moves between the agents for {@code faultLength}; connections survive it. */
    LINK_CUT,
    /** Every connection between the agents closed with a TCP RST. */
    LINK_RESET,
    /** The target accepts connections and never answers them, for {@code faultLength}. */
    PEER_SILENT,
    /**
     * The replica agent's data directory (a 64 MiB tmpfs) filled to the last byte for
     * {@code faultLength}, then freed: the product should say WARNING and resume by itself.
     */
    REPLICA_DISK_FULL,
    /**
     * The source agent's data directory (disk images and .hrl logs, a 64 MiB tmpfs) filled to
     * the last byte for {@code faultLength} while the VM writes, then freed: a write the agent
     * could not record (or store) fails with EIO and is never acknowledged; the writer retries it
     * once space returns.
     */
    SOURCE_DISK_FULL,
  }

  enum Phase {
    INITIAL_COPY, DELTA, RESYNC, PLANNED_FAILOVER, TEST_FAILOVER,
    /** Planned failover, commit, then Reprotect back towards the old source. */
    REPROTECT,
    /** A recovery plan of two VMs (the run's and a second one): TEST_FAILOVER, then cleanup. */
    PLAN
  }

  String name() {
    String length = faultLength.isZero() ? "" : " " + faultLength.toSeconds() + "s";
    return fault.name().toLowerCase().replace('_', '-') + length + " / "
        + phase.name().toLowerCase().replace('_', '-');
  }

  private static Scenario of(Fault fault, Phase phase) {
    return new Scenario(fault, phase, Duration.ZERO, Duration.ofMinutes(5));
  }

  private static Scenario link(Fault fault, Duration length) {
    return new Scenario(fault, Phase.DELTA, length, Duration.ofMinutes(5));
  }

  /**
   * Every scenario, in the order {@code chaos --runs N} takes them (run i is scenario
   * i mod size): the first four are the bounded test tier's.
   */
  static final List<Scenario> CATALOGUE = List.of(
      of(Fault.WORKER_KILL, Phase.INITIAL_COPY),
      of(Fault.SOURCE_AGENT_KILL, Phase.DELTA),
      of(Fault.REPLICA_AGENT_KILL, Phase.DELTA),
      link(Fault.LINK_CUT, Duration.ofSeconds(10)),
      of(Fault.WORKER_KILL, Phase.DELTA),
      of(Fault.WORKER_KILL, Phase.PLANNED_FAILOVER),
      of(Fault.WORKER_KILL, Phase.TEST_FAILOVER),
      of(Fault.WORKER_KILL, Phase.RESYNC),
      of(Fault.SOURCE_AGENT_KILL, Phase.INITIAL_COPY),
      of(Fault.REPLICA_AGENT_KILL, Phase.INITIAL_COPY),
      link(Fault.LINK_RESET, Duration.ZERO),
      link(Fault.PEER_SILENT, Duration.ofSeconds(30)),
      link(Fault.REPLICA_DISK_FULL, Duration.ofSeconds(20)),
      link(Fault.LINK_CUT, Duration.ofMinutes(2)),
      // appended: the runs above keep their numbers and seeds
      link(Fault.SOURCE_DISK_FULL, Duration.ofSeconds(20)),
      of(Fault.WORKER_KILL, Phase.REPROTECT),
      of(Fault.WORKER_KILL, Phase.PLAN));
}
