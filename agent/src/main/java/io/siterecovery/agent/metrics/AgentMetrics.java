package io.siterecovery.agent.metrics;

import io.micrometer.core.instrument.Counter;
import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.siterecovery.agent.hrl.ChangeTracker;
import io.siterecovery.agent.nbd.NbdObserver;
import io.siterecovery.agent.resync.ResyncLedger;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import java.io.UncheckedIOException;
import java.time.Duration;
import java.time.Instant;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * The agent's Prometheus metrics, one registry per agent (two agents in one JVM, as in
 * {@code dev} and the tests, keep theirs apart), injected into the roles that count. Events
 * (bytes shipped and applied, cycle and apply times, NBD requests) are counted where they happen;
 * state (RPO, unshipped log bytes, bytes tracked, resync progress) is read from the VMs at scrape
 * time, so it is never stale and costs nothing between scrapes. Labels carry names only (site,
 * VM, disk, request type, outcome, kind), so the number of series is bounded by the VMs and disks
 * on this host.
 */
public final class AgentMetrics implements NbdObserver {
  /** What a byte counter's bytes were: ranges (initial copy, reverse seed), logs, resync ranges. */
  public enum Kind { RANGES, LOG, RESYNC }

  /** The content type of {@link #scrape()}: Prometheus's text format 0.0.4, which it writes. */
  public static final String CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

  private static final String VM = "vm";
  private static final String DISK = "disk";
  /** Cycle times from sub-second to the longest copy-frequency intervals. */
  private static final Duration[] CYCLE_BUCKETS = seconds(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120, 300,
      900);
  /** NBD latencies from a page-cache hit to a stalled disk. */
  private static final Duration[] NBD_BUCKETS = {Duration.ofNanos(50_000),
      Duration.ofNanos(100_000), Duration.ofNanos(250_000), Duration.ofNanos(500_000),
      Duration.ofMillis(1), Duration.ofMillis(2), Duration.ofMillis(5), Duration.ofMillis(10),
      Duration.ofMillis(25), Duration.ofMillis(100), Duration.ofMillis(250), Duration.ofSeconds(1)};

  private final VmHost host;
  private final PrometheusMeterRegistry registry;
  private final Map<Op, Timer> nbdServed = new EnumMap<>(Op.class);
  private final Map<Op, Timer> nbdFailed = new EnumMap<>(Op.class);
  private final Map<Op, Counter> nbdBytes = new EnumMap<>(Op.class);
  private final Map<Op, Counter> nbdRefused = new EnumMap<>(Op.class);
  /** The state series registered now, by {@link #key}. */
  private final Map<String, Series> stateSeries = new HashMap<>();

  /**
   * A registered state series and what its function reads: Micrometer holds a function
   * counter's object only weakly, so it is held here for as long as the series exists.
   */
  private record Series(Meter meter, Object state) {}

  public AgentMetrics(VmHost host) {
    this.host = host;
    this.registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
    registry.config().commonTags("site", host.site());
    // JVM basics that need no background threads or listeners to clean up.
    new JvmMemoryMetrics().bindTo(registry);
    new JvmThreadMetrics().bindTo(registry);
    new ProcessorMetrics().bindTo(registry);
    new UptimeMetrics().bindTo(registry);
    for (Op op : Op.values()) {
      String name = op.name().toLowerCase();
      nbdServed.put(op, nbdTimer(name, "ok"));
      nbdFailed.put(op, nbdTimer(name, "error"));
      nbdBytes.put(op, Counter.builder("siterecovery.nbd").baseUnit("bytes")
          .description("Bytes NBD clients read, wrote, trimmed or zeroed").tag("op", name)
          .register(registry));
      nbdRefused.put(op, Counter.builder("siterecovery.nbd.refused")
          .description("NBD requests refused before the disk saw them").tag("op", name)
          .register(registry));
    }
  }

  private Timer nbdTimer(String op, String outcome) {
    return Timer.builder("siterecovery.nbd.requests")
        .description("NBD requests served, by type and outcome, and the disk's time for each")
        .tags("op", op, "outcome", outcome).serviceLevelObjectives(NBD_BUCKETS)
        .register(registry);
  }

  /** Every series in Prometheus's text format, the VMs' state read now. */
  public synchronized String scrape() {
    refreshStateSeries();
    return registry.scrape();
  }

  // ---- events, counted where they happen

  /** Bytes this source sent its replica's agent. */
  public void shipped(String vm, Kind kind, long bytes) {
    byteCounter("siterecovery.shipped", "Bytes sent to the replica's agent", vm, kind)
        .increment(bytes);
  }

  /** Bytes this replica wrote into its disks: ranges received, or the changes of applied logs. */
  public void applied(String vm, Kind kind, long bytes) {
    byteCounter("siterecovery.applied", "Bytes written into a replica's disks", vm, kind)
        .increment(bytes);
  }

  private Counter byteCounter(String name, String description, String vm, Kind kind) {
    return Counter.builder(name).baseUnit("bytes").description(description)
        .tags(VM, vm, "kind", kind.name().toLowerCase()).register(registry);
  }

  /** One delta cycle of a source VM, ended well or not. */
  public void cycle(String vm, long nanos, boolean ok) {
    Timer.builder("siterecovery.cycle").description("Delta cycles: swap, ship, apply")
        .tags(VM, vm, "outcome", ok ? "ok" : "error").serviceLevelObjectives(CYCLE_BUCKETS)
        .register(registry).record(Duration.ofNanos(nanos));
  }

  /** One generation applied to a replica (undo capture, writes, force). */
  public void applyTook(String vm, long nanos) {
    Timer.builder("siterecovery.apply").description("Generations applied to a replica")
        .tags(VM, vm).serviceLevelObjectives(CYCLE_BUCKETS).register(registry)
        .record(Duration.ofNanos(nanos));
  }

  @Override
  public void served(Op op, long bytes, long nanos, boolean ok) {
    (ok ? nbdServed : nbdFailed).get(op).record(nanos, TimeUnit.NANOSECONDS);
    if (ok && bytes > 0) {
      nbdBytes.get(op).increment(bytes);
    }
  }

  @Override
  public void refused(Op op) {
    nbdRefused.get(op).increment();
  }

  // ---- state, read at scrape time

  /**
   * Registers the state series that the VMs call for now and removes those they no longer do,
   * along with every series of a VM that is gone, so a deleted VM leaves no series behind.
   */
  private void refreshStateSeries() {
    Map<String, Supplier<Series>> wanted = new HashMap<>();
    Set<String> vms = new HashSet<>();
    for (VmRecord r : host.list()) {
      vms.add(r.name());
      wantReplicaState(wanted, r);
      if (r.protection() != null) {
        host.find(r.name()).ifPresent(vm -> wantSourceState(wanted, vm));
      }
    }
    stateSeries.entrySet().removeIf(e -> {
      boolean stale = !wanted.containsKey(e.getKey());
      if (stale) {
        registry.remove(e.getValue().meter());
      }
      return stale;
    });
    for (Meter m : List.copyOf(registry.getMeters())) {
      String vm = m.getId().getTag(VM);
      if (vm != null && !vms.contains(vm)) {
        registry.remove(m);
      }
    }
    wanted.forEach((key, make) -> stateSeries.computeIfAbsent(key, k -> make.get()));
  }

  /**
   * The true RPO, measured where it matters: how old the replica's latest point is, by this
   * host's clock against the source's seal time of that point (clocks should agree to well under
   * a cycle; NTP does that). Only for a replica whose initial copy is complete (before that it
   * holds no point to fail over to; a stalled copy is the stall alert's) and that is not running
   * (once failed over, its age is no longer data at risk). Each replica's applied-bytes counter
   * exists from the start, at 0, so "nothing applied" is a series an alert can see.
   */
  private void wantReplicaState(Map<String, Supplier<Series>> wanted, VmRecord r) {
    if (r.role() != VmRecord.Role.REPLICA || r.replica() == null) {
      return;
    }
    String name = r.name();
    for (Kind kind : List.of(Kind.RANGES, Kind.LOG)) {
      applied(name, kind, 0);
    }
    if (r.replica().initialComplete() && r.replica().pointTime() != null
        && r.power() != VmRecord.Power.RUNNING) {
      gauge(wanted, "siterecovery.replica.rpo", () -> rpoSeconds(name), "seconds",
          "Age of the replica's latest recovery point (the RPO), read at scrape", name);
    }
  }

  private double rpoSeconds(String vm) {
    return host.find(vm).map(Vm::record).map(VmRecord::replica)
        .map(VmRecord.ReplicaState::pointTime)
        .map(t -> Duration.between(t, Instant.now()).toMillis() / 1000.0).orElse(Double.NaN);
  }

  /**
   * A protected VM's tracking: bytes recorded per disk (a counter that starts again when a
   * tracker is reopened, as counters do after a restart), log bytes not yet acknowledged by the
   * replica, whether a resync is required, and the resync's progress while one is under way.
   */
  private void wantSourceState(Map<String, Supplier<Series>> wanted, Vm vm) {
    String name = vm.name();
    shipped(name, Kind.LOG, 0); // at 0 from the start, like a replica's applied bytes
    boolean resyncUnderWay;
    try {
      resyncUnderWay = ResyncLedger.load(vm).underWay();
    } catch (UncheckedIOException e) {
      // An unreadable ledger fails the resync's own calls, which say why; the scrape goes on
      // (resync_required reads it too and shows NaN).
      resyncUnderWay = false;
    }
    for (var d : vm.disks()) {
      String disk = d.name();
      if (d.tracker() != null) {
        DiskRef ref = new DiskRef(name, disk);
        wanted.put(key("siterecovery.tracked", name, disk), () -> new Series(
            FunctionCounter.builder("siterecovery.tracked", ref, this::trackedBytes)
                .baseUnit("bytes").description("Bytes of writes recorded in the change logs")
                .tags(VM, name, DISK, disk).register(registry), ref));
      }
      if (resyncUnderWay) {
        long size = d.size();
        gauge(wanted, "siterecovery.resync.done", () -> resyncedBytes(name, disk), "bytes",
            "Bytes of a disk compared by the resync under way", name, disk);
        gauge(wanted, "siterecovery.resync.total", () -> size, "bytes",
            "Bytes of a disk the resync under way compares", name, disk);
      }
    }
    gauge(wanted, "siterecovery.unshipped.log", () -> unshippedBytes(name), "bytes",
        "Change-log bytes not yet applied by the replica, the active log included", name);
    gauge(wanted, "siterecovery.resync.required", () -> resyncRequired(name), null,
        "1 when replication cannot go on without a resync (CRITICAL), else 0", name);
  }

  /** A disk named by its VM, looked up at every read: a tracker may be replaced meanwhile. */
  private record DiskRef(String vm, String disk) {}

  /**
   * A gauge over a supplier (held strongly by Micrometer) labelled with its VM and, if given, its
   * disk; registered only if the key is not yet.
   */
  private void gauge(Map<String, Supplier<Series>> wanted, String name, Supplier<Number> value,
      String unit, String description, String vm, String... disk) {
    Tags tags = disk.length == 0 ? Tags.of(VM, vm) : Tags.of(VM, vm, DISK, disk[0]);
    String key = disk.length == 0 ? key(name, vm) : key(name, vm, disk[0]);
    wanted.put(key, () -> new Series(Gauge.builder(name, value)
        .baseUnit(unit).description(description).tags(tags).register(registry), null));
  }

  private static String key(String name, String... labels) {
    return name + "|" + String.join("|", labels);
  }

  private double trackedBytes(DiskRef ref) {
    return host.find(ref.vm()).flatMap(v -> v.disks().stream()
            .filter(d -> d.name().equals(ref.disk())).findFirst())
        .map(d -> d.tracker()).map(ChangeTracker::recordedBytes).orElse(0L);
  }

  private double unshippedBytes(String vm) {
    long pending = 0;
    for (var d : host.find(vm).map(Vm::disks).orElse(List.of())) {
      ChangeTracker t = d.tracker();
      pending += t == null ? 0 : t.pendingBytes();
    }
    return pending;
  }

  private double resyncRequired(String vm) {
    return host.find(vm).map(v -> ResyncLedger.load(v).requiredReason() != null ? 1 : 0)
        .orElse(0);
  }

  private double resyncedBytes(String vm, String disk) {
    return host.find(vm).map(v -> (double) ResyncLedger.load(v).resynced(disk)).orElse(Double.NaN);
  }

  private static Duration[] seconds(double... values) {
    Duration[] out = new Duration[values.length];
    for (int i = 0; i < values.length; i++) {
      out[i] = Duration.ofMillis((long) (values[i] * 1000));
    }
    return out;
  }
}
