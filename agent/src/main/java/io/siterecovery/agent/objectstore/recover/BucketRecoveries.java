package io.siterecovery.agent.objectstore.recover;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.DurableFiles;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.FaultInjection;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages.PromoteResult;
import io.siterecovery.agent.nbd.BlockDevice;
import io.siterecovery.agent.nbd.ExportResolver;
import io.siterecovery.agent.objectstore.BucketReplica;
import io.siterecovery.agent.objectstore.ObjectNames;
import io.siterecovery.agent.objectstore.PointManifest;
import io.siterecovery.agent.objectstore.SealedObjects;
import io.siterecovery.agent.vm.Names;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentSkipListSet;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiFunction;
import java.util.function.Consumer;
import java.util.function.Predicate;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * VMs recovered from a bucket on this recovery host (instant recovery), under
 * {@code <data>/bucket-recoveries/<vm>/}: each disk is a {@link BucketBackedDisk} exported over
 * NBD as {@code <vm>/disk<index>}, like any VM's, as soon as the point's manifest and logs are
 * read; a background fetcher makes the rest of every disk local, chunk after chunk in order, a
 * few at a time. A restarted agent reloads its recoveries and resumes each fetch from its
 * ledgers.
 */
public final class BucketRecoveries implements ExportResolver, Closeable {
  private static final Logger log = LoggerFactory.getLogger(BucketRecoveries.class);
  private static final String RECORD_FILE = "recovery.json";
  private static final String PROMOTE_FILE = "promote.json";
  static final String TEST_SUFFIX = "-test";

  /** What the operator asks: a point (null: the newest) of a VM in the bucket of {@code site}. */
  public record RecoverFromBucketRequest(String site, String bucketVmId, Long point,
      Boolean test) {}

  /**
   * Commits a recovery: the VM becomes the primary here, replicating (once reprotected) back to
   * {@code oldSource}; {@code home} (null: {@code oldSource}) is where a failback returns it.
   */
  public record PromoteRecoveryRequest(String oldSource, String home) {}

  /**
   * What {@code recovery.json} keeps; written last, so a folder without it never finished.
   * {@code test}: made as {@code <vm>-test} (null in records written before it was kept).
   */
  record RecoveryRecord(String vm, String site, String bucketVmId, long point, Instant createdAt,
      Boolean test) {}

  /**
   * A commit of a recovery ({@link #promote}), kept in {@code promote.json} before anything
   * moves: the VM it becomes and, per disk, the ranges ({start, end}) the VM wrote since the
   * point.
   */
  public record PromoteIntent(String vm, String oldSource, String home, List<AdoptedDisk> disks) {}

  /** A disk of a committed recovery: its name and size, its id (the source disk's). */
  public record AdoptedDisk(String name, long sizeBytes, UUID id, List<long[]> changedRanges) {}

  /**
   * Where a committed recovery goes: the host's VMs. {@link #adopt} finds the images already in
   * {@link #vmDir} and makes them the VM the intent names; it is repeated after a crash, so it
   * answers a VM it made before as it is.
   */
  public interface Adopter {
    Path vmDir(String vm);

    PromoteResult adopt(PromoteIntent intent) throws IOException;

    /** The VM a commit of {@code vm} towards {@code oldSource} left, if there is one. */
    Optional<PromoteResult> adopted(String vm, String oldSource) throws IOException;
  }

  private static final Adopter NO_VMS = new Adopter() {
    @Override
    public Path vmDir(String vm) {
      throw refused();
    }

    @Override
    public PromoteResult adopt(PromoteIntent intent) {
      throw refused();
    }

    @Override
    public Optional<PromoteResult> adopted(String vm, String oldSource) {
      return Optional.empty();
    }

    private AgentException refused() {
      return new AgentException(ErrorCode.INVALID_STATE, "these recoveries have no VM host to"
          + " commit to");
    }
  };

  public record RecoveryInfo(String vm, String site, String bucketVmId, long point,
      Instant createdAt, List<String> exports) {}

  public record DiskProgress(String disk, long sizeBytes, long localBytes, List<Long> failedChunks,
      List<Long> writtenChunks) {}

  /** How far the background fetch is: bytes local of the total, and the download rate. */
  public record RecoveryProgress(String vm, long localBytes, long totalBytes,
      long downloadedBytes, double downloadMiBPerSecond, boolean complete,
      List<DiskProgress> disks) {}

  private final class Recovery {
    final RecoveryRecord record;
    final Path dir;
    final Map<String, BucketBackedDisk> disks;
    final Map<String, ConcurrentSkipListSet<Long>> failed = new ConcurrentHashMap<>();
    final ExecutorService fetchers;
    /** The ledgers' marks committed every {@link #LEDGER_COMMIT_EVERY} while the fetch runs. */
    volatile ScheduledFuture<?> ledgerCommits;
    final long startedNanos = System.nanoTime();
    final AtomicLong finishedNanos = new AtomicLong();
    volatile boolean stopping;

    Recovery(RecoveryRecord record, Path dir, Map<String, BucketBackedDisk> disks) {
      this.record = record;
      this.dir = dir;
      this.disks = disks;
      disks.keySet().forEach(d -> failed.put(d, new ConcurrentSkipListSet<>()));
      this.fetchers = Executors.newFixedThreadPool(fetchThreads, r -> {
        Thread t = new Thread(r, "bucket-fetch-" + record.vm());
        t.setDaemon(true);
        return t;
      });
    }

    /** Every chunk of every disk in order, {@code fetchThreads} at a time. */
    void startFetching() {
      ledgerCommits = LEDGER_COMMITS.scheduleWithFixedDelay(this::commitLedgers,
          LEDGER_COMMIT_EVERY.toMillis(), LEDGER_COMMIT_EVERY.toMillis(), TimeUnit.MILLISECONDS);
      List<BucketBackedDisk> all = List.copyOf(disks.values());
      AtomicLong next = new AtomicLong();
      long total = all.stream().mapToLong(BucketBackedDisk::chunks).sum();
      AtomicLong running = new AtomicLong(fetchThreads);
      for (int t = 0; t < fetchThreads; t++) {
        fetchers.execute(() -> {
          for (long i = next.getAndIncrement(); i < total && !stopping;
              i = next.getAndIncrement()) {
            long at = i;
            BucketBackedDisk disk = null;
            for (BucketBackedDisk d : all) {
              if (at < d.chunks()) {
                disk = d;
                break;
              }
              at -= d.chunks();
            }
            try {
              disk.fetch(at);
            } catch (ChunkUnavailableException e) {
              failed.get(diskName(disk)).add(at); // logged by the disk; a read retries it
            } catch (IOException | RuntimeException e) {
              if (!stopping) {
                log.warn("[{}] background fetch of {}: {}", record.vm(), disk.label(),
                    e.toString());
                failed.get(diskName(disk)).add(at);
              }
            }
          }
          if (running.decrementAndGet() == 0 && !stopping) {
            finishedNanos.set(System.nanoTime());
            RecoveryProgress p = progress(this);
            log.info("[{}] background fetch of {} finished in {} s: {} of {} bytes local, {} "
                + "downloaded, {} chunks failed", record.vm(), record.vm(),
                (System.nanoTime() - startedNanos) / 1_000_000_000, p.localBytes(),
                p.totalBytes(), p.downloadedBytes(), p.disks().stream()
                    .mapToInt(d -> d.failedChunks().size()).sum());
          }
        });
      }
    }

    private void commitLedgers() {
      for (BucketBackedDisk disk : disks.values()) {
        try {
          disk.commitFetched();
        } catch (IOException | RuntimeException e) {
          if (!stopping) {
            log.warn("[{}] ledger of {} not committed: {}", record.vm(), disk.label(),
                e.toString());
          }
        }
      }
    }

    /** Stops the fetch (a chunk being fetched finishes) and closes the disks. */
    void close() throws IOException {
      stopping = true;
      if (ledgerCommits != null) {
        ledgerCommits.cancel(false);
      }
      fetchers.shutdown();
      try {
        if (!fetchers.awaitTermination(2, TimeUnit.MINUTES)) {
          log.warn("[{}] background fetch still running at close", record.vm());
        }
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      closeAll(disks.values());
    }

    private String diskName(BucketBackedDisk disk) {
      return disks.entrySet().stream().filter(e -> e.getValue() == disk).findFirst()
          .orElseThrow().getKey();
    }
  }

  /**
   * How often the fetched chunks' marks reach the ledgers besides every 16 chunks, which bounds
   * what a killed recovery host downloads again to about this much of its fetch.
   */
  static final Duration LEDGER_COMMIT_EVERY = Duration.ofSeconds(1);
  private static final ScheduledExecutorService LEDGER_COMMITS =
      Executors.newSingleThreadScheduledExecutor(r -> {
        Thread t = new Thread(r, "bucket-ledger-commits");
        t.setDaemon(true);
        return t;
      });

  private final Path root;
  private final BucketSites sites;
  private final Predicate<String> vmNameTaken;
  private final BiFunction<String, String, String> exportUri;
  private final int fetchThreads;
  private final Adopter adopter;
  private final Map<String, Recovery> recoveries = new ConcurrentHashMap<>();
  private volatile Consumer<String> disconnectExportsOf = vm -> { };

  /**
   * Reloads the recoveries a previous run left and resumes their fetches. {@code vmNameTaken}
   * says whether this host already has a VM of a name; {@code exportUri} gives the NBD URI of an
   * export ({@code vm}, {@code disk}).
   */
  public BucketRecoveries(Path dataDir, BucketSites sites, Predicate<String> vmNameTaken,
      BiFunction<String, String, String> exportUri, int fetchThreads) throws IOException {
    this(dataDir, sites, vmNameTaken, exportUri, fetchThreads, NO_VMS);
  }

  /**
   * As above; a commit ({@link #promote}) makes a recovery a VM of {@code adopter}, and a commit
   * a previous run left half done is finished here.
   */
  public BucketRecoveries(Path dataDir, BucketSites sites, Predicate<String> vmNameTaken,
      BiFunction<String, String, String> exportUri, int fetchThreads, Adopter adopter)
      throws IOException {
    this.adopter = adopter;
    if (fetchThreads < 1 || fetchThreads > 32) {
      throw new IllegalArgumentException("fetch threads out of range: " + fetchThreads);
    }
    this.root = Files.createDirectories(dataDir.resolve("bucket-recoveries"));
    this.sites = sites;
    this.vmNameTaken = vmNameTaken;
    this.exportUri = exportUri;
    this.fetchThreads = fetchThreads;
    try (Stream<Path> dirs = Files.list(root)) {
      for (Path dir : dirs.filter(Files::isDirectory).toList()) {
        load(dir);
      }
    }
  }

  private void load(Path dir) throws IOException {
    Path intent = dir.resolve(PROMOTE_FILE);
    if (Files.exists(intent)) {
      PromoteIntent i = Json.MAPPER.readValue(intent.toFile(), PromoteIntent.class);
      log.warn("[{}] finishing the commit of a recovery from a bucket that a stop interrupted",
          i.vm());
      try {
        finishPromote(dir, i);
      } catch (IOException | RuntimeException e) {
        // kept as it is: the next start tries again, and nothing here is lost meanwhile
        log.error("[{}] the commit of a recovery from a bucket could not be finished: {}",
            i.vm(), e.toString());
      }
      return;
    }
    Path file = dir.resolve(RECORD_FILE);
    if (!Files.exists(file)) {
      log.warn("removing {}: a recovery from a bucket whose making was interrupted", dir);
      DurableFiles.deleteTree(dir);
      return;
    }
    RecoveryRecord r = Json.MAPPER.readValue(file.toFile(), RecoveryRecord.class);
    try {
      Recovery recovery = open(r, dir);
      recoveries.put(r.vm(), recovery);
      recovery.startFetching();
      log.info("[{}] recovery from bucket site {} reloaded at point {}; {} of {} bytes local",
          r.vm(), r.site(), r.point(), progress(recovery).localBytes(),
          progress(recovery).totalBytes());
    } catch (IOException | RuntimeException e) {
      // kept on disk: the site may be configured again, or the bucket reachable, next start
      log.error("[{}] recovery from bucket site {} not reloaded: {}", r.vm(), r.site(),
          e.toString());
    }
  }

  /** Connects discard to the NBD server, which drops the recovered VM's clients. */
  public void onDiscard(Consumer<String> disconnectExportsOfVm) {
    this.disconnectExportsOf = disconnectExportsOfVm;
  }

  /**
   * Creates VM {@code vm} (or {@code <vm>-test} for a test) from a point in a bucket and exports
   * its disks at once; the background fetch starts. The same request again answers the VM made.
   */
  public RecoveryInfo create(String vm, RecoverFromBucketRequest request) throws IOException {
    Names.requireValid("VM", vm);
    if (request == null || request.site() == null || request.bucketVmId() == null) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "site and bucketVmId are required");
    }
    Names.requireValid("site", request.site());
    if (request.point() != null && request.point() < 1) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "point must be positive");
    }
    String name = Boolean.TRUE.equals(request.test()) ? vm + TEST_SUFFIX : vm;
    Names.requireValid("VM", name);
    ObjectNames objectNames;
    try {
      objectNames = new ObjectNames(request.bucketVmId());
    } catch (IllegalArgumentException e) {
      throw new AgentException(ErrorCode.BAD_REQUEST, e.getMessage());
    }
    BucketSites.Bucket bucket = sites.bucket(request.site()).orElseThrow(() ->
        new AgentException(ErrorCode.BAD_REQUEST, "site " + request.site() + " is not an "
            + "object-store site this agent is configured for"));
    synchronized (this) {
      Recovery existing = recoveries.get(name);
      if (existing != null) {
        RecoveryRecord r = existing.record;
        if (r.site().equals(request.site()) && r.bucketVmId().equals(request.bucketVmId())
            && (request.point() == null || request.point() == r.point())) {
          return info(existing);
        }
        throw new AgentException(ErrorCode.VM_EXISTS, "VM " + name + " is already recovered "
            + "from bucket site " + r.site() + " (" + r.bucketVmId() + " at point " + r.point()
            + "); discard it first");
      }
      if (vmNameTaken.test(name)) {
        throw new AgentException(ErrorCode.VM_EXISTS, "this host already has a VM named "
            + name);
      }
      long started = System.nanoTime();
      Path dir = root.resolve(name);
      DurableFiles.deleteTree(dir);
      Files.createDirectories(dir);
      try {
        BucketReplica replica = new BucketReplica(bucket.store(),
            new SealedObjects(bucket.kek()), objectNames.vmId(), BucketReplica.DEFAULT_CHUNK_SIZE,
            1, dir.resolve("scratch"));
        List<Long> points = replica.pointIds();
        if (points.isEmpty()) {
          throw new AgentException(ErrorCode.INVALID_STATE, "the bucket of site "
              + request.site() + " holds no recovery point of " + request.bucketVmId());
        }
        long point = request.point() == null ? points.get(points.size() - 1) : request.point();
        if (!points.contains(point)) {
          throw new AgentException(ErrorCode.INVALID_STATE, "point " + point + " is not in the"
              + " bucket for " + request.bucketVmId() + " (points: " + points + ")");
        }
        RecoveryRecord record = new RecoveryRecord(name, request.site(), objectNames.vmId(),
            point, Instant.now(), Boolean.TRUE.equals(request.test()));
        Recovery recovery = open(record, dir);
        try {
          DurableFiles.writeJson(dir.resolve(RECORD_FILE), record);
        } catch (IOException | RuntimeException e) {
          recovery.close();
          throw e;
        }
        recoveries.put(name, recovery);
        recovery.startFetching();
        log.info("[{}] recovered from bucket site {} ({} point {}): {} disks exported in {} ms,"
            + " the rest is fetched in the background", name, request.site(),
            objectNames.vmId(), point, recovery.disks.size(),
            (System.nanoTime() - started) / 1_000_000);
        return info(recovery);
      } catch (IOException | RuntimeException e) {
        if (!recoveries.containsKey(name)) {
          DurableFiles.deleteTree(dir);
        }
        throw e;
      }
    }
  }

  /** The name a recovered VM's disk has: by its index in the point, as the source's listing. */
  public static String diskName(int index) {
    return "disk" + index;
  }

  private Recovery open(RecoveryRecord r, Path dir) throws IOException {
    BucketSites.Bucket bucket = sites.bucket(r.site()).orElseThrow(() ->
        new IOException("site " + r.site() + " is not an object-store site this agent knows"));
    SealedObjects sealed = new SealedObjects(bucket.kek());
    BucketReplica replica = new BucketReplica(bucket.store(), sealed, r.bucketVmId(),
        BucketReplica.DEFAULT_CHUNK_SIZE, 1, dir.resolve("scratch"));
    // the newest revision: a prune since may have folded logs into chunks, same contents
    PointManifest manifest = replica.manifest(r.point());
    Map<String, BucketBackedDisk> disks = new LinkedHashMap<>();
    try {
      for (PointManifest.Disk d : manifest.disks().stream()
          .sorted(Comparator.comparingInt(PointManifest.Disk::index)).toList()) {
        String diskName = diskName(d.index());
        disks.put(diskName, BucketBackedDisk.open(dir, r.vm() + "/" + diskName,
            bucket.store(), sealed, replica.names(), d,
            () -> replica.manifest(r.point()).disk(d.index())));
      }
    } catch (IOException | RuntimeException e) {
      closeAll(disks.values());
      throw e;
    }
    return new Recovery(r, dir, disks);
  }

  public List<RecoveryInfo> list() {
    return recoveries.values().stream().map(this::info)
        .sorted(Comparator.comparing(RecoveryInfo::vm)).toList();
  }

  public RecoveryProgress progress(String vm) {
    return progress(get(vm));
  }

  /** Disk {@code disk} of recovered VM {@code vm}, for a caller on this host (failback, tests). */
  public BucketBackedDisk disk(String vm, String disk) {
    BucketBackedDisk d = get(vm).disks.get(disk);
    if (d == null) {
      throw new AgentException(ErrorCode.VM_NOT_FOUND, "VM " + vm + " has no disk " + disk);
    }
    return d;
  }

  /** Drops the recovered VM's NBD clients, stops its fetch and deletes its local data. */
  public Map<String, Object> discard(String vm) throws IOException {
    Recovery recovery;
    synchronized (this) {
      recovery = recoveries.remove(vm);
    }
    if (recovery == null) {
      throw new AgentException(ErrorCode.VM_NOT_FOUND, "no VM " + vm + " recovered from a bucket"
          + " on this host");
    }
    recovery.disks.values().forEach(BucketBackedDisk::setOffline);
    disconnectExportsOf.accept(vm);
    recovery.close();
    DurableFiles.deleteTree(recovery.dir);
    log.info("[{}] recovery from bucket site {} discarded", vm, recovery.record.site());
    return Map.of("discarded", vm);
  }

  /**
   * Commits recovered VM {@code vm}: once every chunk is local, it becomes a VM of this host
   * ({@link Adopter}) exactly as a committed failover leaves one, running, its disks the
   * recovery's images (moved, not copied), and the recovery is gone. Its NBD clients are
   * dropped and reconnect to the same export names, served by the VM then. The same request
   * again answers the same, also after a restart.
   *
   * <p>Crash safety: {@code promote.json} is written (durably) before anything moves, once the
   * disks refuse I/O. Before it, a crash leaves the recovery, reloaded as any; after it, the
   * next start finishes the commit ({@link #load}) from it alone, without the bucket: each image
   * is moved if it is still here (a rename is atomic: it is in one place or the other), then the
   * VM's record is written (only when every image is in its folder, so no VM exists without its
   * disks), then this folder's {@code recovery.json} is removed before the rest. So a kill
   * leaves the recovery or the VM, or both halfway with the intent that completes them.
   */
  public PromoteResult promote(String vm, String oldSource, String home) throws IOException {
    Names.requireValid("VM", vm);
    Names.requireValid("site", oldSource);
    String homeSite = home == null ? oldSource : Names.requireValid("site", home);
    synchronized (this) {
      Recovery r = recoveries.get(vm);
      Path pending = root.resolve(vm).resolve(PROMOTE_FILE);
      if (r == null && Files.exists(pending)) {
        // a commit of this process that failed after its intent (the disk full, say)
        PromoteIntent intent = Json.MAPPER.readValue(pending.toFile(), PromoteIntent.class);
        if (!intent.oldSource().equals(oldSource)) {
          throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vm + " is being committed"
              + " towards " + intent.oldSource() + ", not " + oldSource);
        }
        return finishPromote(root.resolve(vm), intent);
      }
      if (r == null) {
        Optional<PromoteResult> done = adopter.adopted(vm, oldSource);
        if (done.isPresent()) {
          return done.get();
        }
        Recovery test = recoveries.get(vm + TEST_SUFFIX);
        throw test != null ? new AgentException(ErrorCode.INVALID_STATE, "VM " + vm + " has"
            + " only a test recovery on this host (" + test.record.vm() + "), which is never"
            + " committed; recover it with test false to fail over")
            : new AgentException(ErrorCode.VM_NOT_FOUND, "no VM " + vm + " recovered from a"
                + " bucket on this host, and no VM it became");
      }
      if (isTest(r.record)) {
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vm + " is a test recovery"
            + " (of " + r.record.bucketVmId() + " at point " + r.record.point() + "), which is"
            + " never committed; discard it");
      }
      if (vmNameTaken.test(vm)) {
        throw new AgentException(ErrorCode.VM_EXISTS, "this host already has a VM named " + vm);
      }
      requireLocal(r);
      long started = System.nanoTime();
      // No I/O from here: what the ledgers say the VM wrote is all it will have written.
      r.disks.values().forEach(BucketBackedDisk::setOffline);
      disconnectExportsOf.accept(vm);
      List<AdoptedDisk> disks = new ArrayList<>();
      try {
        for (BucketBackedDisk d : r.disks.values()) {
          d.flush(); // the images are durable before the intent says they are the VM's
        }
      } catch (IOException | RuntimeException e) {
        r.disks.values().forEach(BucketBackedDisk::setOnline);
        throw e;
      }
      r.disks.forEach((name, d) -> disks.add(new AdoptedDisk(name, d.size(), d.id(),
          d.writtenRanges())));
      PromoteIntent intent = new PromoteIntent(vm, oldSource, homeSite, List.copyOf(disks));
      FaultInjection.reached("bucket-promote-offline");
      try {
        DurableFiles.writeJson(r.dir.resolve(PROMOTE_FILE), intent);
      } catch (IOException | RuntimeException e) {
        r.disks.values().forEach(BucketBackedDisk::setOnline);
        throw e;
      }
      FaultInjection.reached("bucket-promote-intent");
      recoveries.remove(vm);
      r.close(); // the fetch is done; the images are forced
      PromoteResult result = finishPromote(r.dir, intent);
      log.info("[{}] recovery from bucket site {} ({} point {}) committed in {} ms: the VM runs"
          + " on this host's disks now; {} bytes written since the point wait for reverse"
          + " replication to {}", vm, r.record.site(), r.record.bucketVmId(), r.record.point(),
          (System.nanoTime() - started) / 1_000_000, result.changedBytes(), oldSource);
      return result;
    }
  }

  /**
   * Whether VM {@code vm} runs here as a recovery (not a test one) not yet committed: a source
   * coming back must fence its own copy, as for a replica started by a failover.
   */
  public boolean runs(String vm) {
    Recovery r = recoveries.get(vm);
    return r != null && !isTest(r.record);
  }

  private static boolean isTest(RecoveryRecord r) {
    return r.test() == null ? r.vm().endsWith(TEST_SUFFIX) : r.test();
  }

  /**
   * Every chunk must be local before the recovery leaves the bucket behind. Chunks the fetch
   * could not get are tried once more here, and those that still fail need an operator; a fetch
   * under way is worth waiting for (a recoverable error).
   */
  private void requireLocal(Recovery r) {
    List<String> unavailable = new ArrayList<>();
    r.disks.forEach((name, disk) -> {
      List<Long> still = new ArrayList<>();
      for (long chunk : List.copyOf(r.failed.get(name))) {
        try {
          disk.fetch(chunk);
          r.failed.get(name).remove(chunk);
        } catch (IOException | RuntimeException e) {
          still.add(chunk);
        }
      }
      if (!still.isEmpty()) {
        unavailable.add(name + " chunks " + still);
      }
    });
    if (!unavailable.isEmpty()) {
      throw new AgentException(ErrorCode.INVALID_STATE, "VM " + r.record.vm() + " cannot be"
          + " committed: the bucket of site " + r.record.site() + " does not give "
          + String.join(", ", unavailable) + " at point " + r.record.point() + " (damaged,"
          + " missing or another's objects: see this agent's log), tried again just now");
    }
    RecoveryProgress p = progress(r);
    if (!p.complete()) {
      throw new AgentException(ErrorCode.NOT_LOCAL_YET, "VM " + r.record.vm() + " is not local"
          + " yet: " + p.localBytes() + " of " + p.totalBytes() + " bytes local; it is"
          + " committed once its background fetch is complete");
    }
  }

  /** The steps after the intent is durable; each finds its work done if a crash came after it. */
  private PromoteResult finishPromote(Path dir, PromoteIntent intent) throws IOException {
    Path vmDir = Files.createDirectories(adopter.vmDir(intent.vm()));
    for (AdoptedDisk d : intent.disks()) {
      Path image = dir.resolve(d.name() + ".img");
      Path target = vmDir.resolve(d.name() + ".img");
      if (Files.exists(image)) {
        Files.move(image, target, StandardCopyOption.ATOMIC_MOVE);
        FaultInjection.reached("bucket-promote-image");
      } else if (!Files.exists(target)) {
        throw new IOException("the commit of " + intent.vm() + " finds " + d.name() + " neither"
            + " in " + dir + " nor in " + vmDir + "; " + dir + " is kept");
      }
    }
    DurableFiles.forceDir(vmDir);
    DurableFiles.forceDir(dir);
    PromoteResult result = adopter.adopt(intent);
    FaultInjection.reached("bucket-promote-adopted");
    // recovery.json first: a folder that lost it is never taken for a recovery again
    Files.deleteIfExists(dir.resolve(RECORD_FILE));
    DurableFiles.forceDir(dir);
    DurableFiles.deleteTree(dir);
    return result;
  }

  private Recovery get(String vm) {
    Recovery r = recoveries.get(vm);
    if (r == null) {
      throw new AgentException(ErrorCode.VM_NOT_FOUND, "no VM " + vm + " recovered from a bucket"
          + " on this host");
    }
    return r;
  }

  private RecoveryProgress progress(Recovery r) {
    List<DiskProgress> disks = new ArrayList<>();
    long local = 0;
    long total = 0;
    long downloaded = 0;
    for (Map.Entry<String, BucketBackedDisk> e : r.disks.entrySet()) {
      BucketBackedDisk d = e.getValue();
      disks.add(new DiskProgress(e.getKey(), d.size(), d.localBytes(),
          List.copyOf(r.failed.get(e.getKey())), d.writtenChunks()));
      local += d.localBytes();
      total += d.size();
      downloaded += d.fetchedBytes();
    }
    long end = r.finishedNanos.get() != 0 ? r.finishedNanos.get() : System.nanoTime();
    double seconds = Math.max(1e-3, (end - r.startedNanos) / 1e9);
    return new RecoveryProgress(r.record.vm(), local, total, downloaded,
        downloaded / seconds / (1 << 20), local == total, List.copyOf(disks));
  }

  private RecoveryInfo info(Recovery r) {
    RecoveryRecord rec = r.record;
    return new RecoveryInfo(rec.vm(), rec.site(), rec.bucketVmId(), rec.point(),
        rec.createdAt(), r.disks.keySet().stream().map(d -> exportUri.apply(rec.vm(), d))
            .toList());
  }

  @Override
  public Optional<BlockDevice> openExport(String exportName) {
    int slash = exportName.indexOf('/');
    if (slash < 0) {
      return Optional.empty();
    }
    Recovery r = recoveries.get(exportName.substring(0, slash));
    return r == null ? Optional.empty()
        : Optional.ofNullable(r.disks.get(exportName.substring(slash + 1)));
  }

  @Override
  public List<String> exportNames() {
    return recoveries.values().stream().flatMap(r -> r.disks.keySet().stream()
        .map(d -> r.record.vm() + "/" + d)).sorted().toList();
  }

  /** Stops the fetches and closes the disks; the recoveries load again (and resume) on restart. */
  @Override
  public void close() throws IOException {
    IOException first = null;
    for (Recovery r : recoveries.values()) {
      try {
        r.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    recoveries.clear();
    if (first != null) {
      throw first;
    }
  }

  private static void closeAll(Iterable<BucketBackedDisk> disks) throws IOException {
    IOException first = null;
    for (BucketBackedDisk d : disks) {
      try {
        d.close();
      } catch (IOException e) {
        first = first == null ? e : first;
      }
    }
    if (first != null) {
      throw first;
    }
  }
}
