package io.siterecovery.agent.objectstore.ship;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.DurableFiles;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentMessages.TransferOptions;
import io.siterecovery.agent.api.BucketMessages.BucketCycleRequest;
import io.siterecovery.agent.api.BucketMessages.BucketCycleResult;
import io.siterecovery.agent.api.BucketMessages.BucketDisk;
import io.siterecovery.agent.api.BucketMessages.BucketInitialProgress;
import io.siterecovery.agent.api.BucketMessages.BucketInitialRequest;
import io.siterecovery.agent.api.BucketMessages.BucketPoint;
import io.siterecovery.agent.api.BucketMessages.BucketPoints;
import io.siterecovery.agent.api.BucketMessages.BucketPruneRequest;
import io.siterecovery.agent.api.BucketMessages.BucketPruneResult;
import io.siterecovery.agent.api.BucketMessages.BucketReattachResult;
import io.siterecovery.agent.api.BucketMessages.BucketResyncProgress;
import io.siterecovery.agent.api.BucketMessages.BucketResyncRequest;
import io.siterecovery.agent.api.BucketMessages;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.hrl.ChangeTracker.SealedLog;
import io.siterecovery.agent.metrics.AgentMetrics;
import io.siterecovery.agent.objectstore.BucketReplica;
import io.siterecovery.agent.objectstore.ObjectNames;
import io.siterecovery.agent.objectstore.ObjectStore;
import io.siterecovery.agent.objectstore.PointManifest;
import io.siterecovery.agent.objectstore.S3ObjectStore;
import io.siterecovery.agent.objectstore.SealedObjectException;
import io.siterecovery.agent.objectstore.SealedObjects;
import io.siterecovery.agent.objectstore.recover.BucketRecoveries;
import io.siterecovery.agent.objectstore.recover.LogIndex;
import io.siterecovery.agent.resync.ResyncLedger;
import io.siterecovery.agent.source.QuiesceRunner;
import io.siterecovery.agent.source.ReplicationSource;
import io.siterecovery.agent.transport.Transport;
import io.siterecovery.agent.vm.Names;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.SourceProtection;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The source side of replication to an object-store site: a VM's initial copy as chunk objects,
 * in bounded, resumable steps ({@link ChunkCheckpoint}), then delta cycles that seal the VM's
 * .hrl generations and ship them, each committed as a recovery point whose manifest is written
 * last ({@link BucketReplica}), and retention. The VM's protection names the object-store site
 * as its target, so its writes are tracked from the first step on, across restarts, as for a
 * peer site; a VM replicates to one target at a time.
 */
public final class BucketShipper implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(BucketShipper.class);
  static final Duration DEFAULT_BUDGET = Duration.ofSeconds(3);
  static final Duration MAX_BUDGET = Duration.ofMinutes(10);
  static final int UPLOAD_THREADS = 4;
  static final int MAX_KEEP = 1000;
  private static final String DIR = "bucket-";
  private static final String CHECKPOINT = "initial.checkpoint";
  private static final String RESYNC_CHECKPOINT = "resync.checkpoint";
  /** The point a resync compares against; the one after it can only be the resync's own. */
  private static final String RESYNC_BASE = "resync.base";

  private record Site(ObjectStoreSite config, S3ObjectStore store, SealedObjects sealed) {}

  private final VmHost host;
  private final AgentMetrics metrics;
  private final Map<String, Site> sites = new LinkedHashMap<>();
  /** Per VM and site, the logs a resync under way compares with (see {@link ResyncLogs}). */
  private final Map<String, ResyncLogs> resyncLogs = new ConcurrentHashMap<>();

  /** Bytes shipped and cycles are counted in {@code metrics} as for a peer site. */
  public BucketShipper(VmHost host, Map<String, ObjectStoreSite> objectStores,
      AgentMetrics metrics) {
    this.host = host;
    this.metrics = metrics;
    objectStores.forEach((name, site) -> sites.put(name, new Site(site,
        new S3ObjectStore(site.config()), new SealedObjects(site.kek()))));
  }

  /** The object-store sites this agent ships to, as a worker checks them (no secret). */
  public List<BucketMessages.ObjectStoreInfo> describe() {
    return sites.values().stream().map(s -> new BucketMessages.ObjectStoreInfo(s.config().name(),
        s.config().config().endpoint().toString(), s.config().config().region(),
        s.config().config().bucket(), s.config().config().prefix(), s.config().kek().id(),
        s.config().chunkSize())).toList();
  }

  /**
   * The VM's id in a bucket: a hash of its name (names are unique across a deployment and a
   * replica keeps its VM's name), so object names reveal no VM name and any agent can find it.
   */
  public static String bucketVmId(String vmName) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      sha.update("site-recovery bucket vm\0".getBytes(StandardCharsets.US_ASCII));
      byte[] digest = sha.digest(vmName.getBytes(StandardCharsets.UTF_8));
      return HexFormat.of().formatHex(digest, 0, 16);
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }

  /**
   * One bounded step of the initial copy: uploads the chunks not yet durable until the budget is
   * spent, then, once every chunk is, seals the logs tracked meanwhile and commits the first
   * point. The first step starts tracking the VM's writes (before any chunk is read).
   */
  public BucketInitialProgress initial(String vmName, String siteName,
      BucketInitialRequest request) throws IOException {
    BucketInitialRequest r = request == null ? new BucketInitialRequest(null, null) : request;
    Duration budget = budget(r.budgetMillis());
    long deadline = System.nanoTime() + budget.toNanos();
    Transport.TokenBucket pace = bandwidth(r.bandwidthMBps());
    Site site = site(siteName);
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      VmRecord record = vm.record();
      if (record.role() != VmRecord.Role.PRIMARY) {
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vmName + " on " + host.site()
            + " is a " + record.role() + ", not a primary");
      }
      SourceProtection protection = record.protection();
      if (protection != null && !protection.targetSite().equals(siteName)) {
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vmName
            + " is already replicated to " + protection.targetSite());
      }
      String bucketVmId = bucketVmId(vmName);
      ObjectStore store = store(site, pace);
      BucketReplica replica = replica(vm, site, store);
      List<Long> points = replica.pointIds();
      if (protection == null) {
        if (!points.isEmpty()) {
          throw staleBucket(vm, siteName, bucketVmId, "an earlier protection");
        }
        // Tracking starts before the first chunk is read: every write from now on is in a log.
        // Chunks a checkpoint of an earlier protection names predate it, so they are sent again.
        Files.deleteIfExists(stateDir(vm, siteName).resolve(CHECKPOINT));
        Files.createDirectories(stateDir(vm, siteName)); // what isBucketSource looks for
        host.attachTrackers(vm);
        host.update(vm, rec -> rec.withProtection(new SourceProtection(siteName, false)));
        log.info("[{}] protection of {} enabled towards {}", host.site(), vmName,
            site.config());
      }
      ResyncLedger.requireNoResyncUnderWay(vm);
      List<DiskRef> disks = disks(vm);
      int chunkSize = site.config().chunkSize();
      long[] chunks = disks.stream().mapToLong(d -> chunks(d.disk().size(), chunkSize)).toArray();
      long totalChunks = Arrays.stream(chunks).sum();
      long totalBytes = disks.stream().mapToLong(d -> d.disk().size()).sum();
      Path checkpointFile = stateDir(vm, siteName).resolve(CHECKPOINT);
      if (!points.isEmpty()) {
        PointManifest first = replica.manifest(points.get(0));
        for (DiskRef d : disks) {
          if (first.disks().stream().noneMatch(m -> m.index() == d.index()
              && m.diskId().equals(d.disk().id()) && m.size() == d.disk().size())) {
            throw staleBucket(vm, siteName, bucketVmId, "another VM of that name");
          }
        }
        // committed (perhaps by a step whose answer was lost): finish the bookkeeping
        completeInitial(vm, siteName);
        Files.deleteIfExists(checkpointFile);
        return new BucketInitialProgress(vmName, siteName, bucketVmId, totalChunks, totalChunks,
            totalBytes, totalBytes, totalChunks, 0, 0, true, points.get(0));
      }
      if (protection != null && protection.initialComplete()) {
        // The bucket lost the VM's points (emptied by hand, say): the copy starts over, and the
        // logs not yet shipped make it consistent as on the first copy.
        log.warn("[{}] {} holds no point of {} any more: its initial copy starts over",
            host.site(), siteName, vmName);
        host.update(vm, rec -> rec.withProtection(new SourceProtection(siteName, false)));
      }
      String header = ChunkCheckpoint.header(bucketVmId, chunkSize,
          disks.stream().map(d -> d.disk().id() + ":" + d.disk().size()).toList());
      try (ChunkCheckpoint checkpoint = ChunkCheckpoint.open(checkpointFile, header, chunks)) {
        long skipped = checkpoint.done();
        Uploads uploads = new Uploads(replica, store, site, checkpoint,
            inFlight(r.bandwidthMBps(), chunkSize));
        try {
          copy:
          for (DiskRef d : disks) {
            for (int c = 0; c < chunks[d.index()]; c++) {
              if (checkpoint.state(d.index(), c) != 0) {
                continue;
              }
              if (!uploads.pipeline.reserve(deadline)) {
                break copy;
              }
              uploads.chunk(d, c, chunkSize);
            }
          }
          uploads.pipeline.awaitAll();
        } finally {
          uploads.pipeline.shutdownNow();
        }
        checkpoint.force();
        long done = checkpoint.done();
        Long pointId = null;
        if (done == totalChunks && System.nanoTime() < deadline) {
          pointId = commitFirst(vm, siteName, replica, disks, checkpoint, chunkSize);
          checkpoint.delete();
        }
        return new BucketInitialProgress(vmName, siteName, bucketVmId, done, totalChunks,
            doneBytes(checkpoint, disks, chunks, chunkSize), totalBytes, skipped,
            uploads.pipeline.sent.get(), uploads.pipeline.bytes.get(), pointId != null, pointId);
      }
    } finally {
      vm.operationLock().unlock();
    }
  }

  private long commitFirst(Vm vm, String siteName, BucketReplica replica, List<DiskRef> disks,
      ChunkCheckpoint checkpoint, int chunkSize) throws IOException {
    ReplicationSource.swapAll(vm);
    Map<Integer, List<SealedLog>> logs = sealedLogs(disks, null);
    List<PointManifest.Disk> copied = new ArrayList<>();
    for (DiskRef d : disks) {
      long[] generations = new long[(int) chunks(d.disk().size(), chunkSize)];
      for (int c = 0; c < generations.length; c++) {
        generations[c] = checkpoint.state(d.index(), c) == ChunkCheckpoint.ZERO
            ? PointManifest.ZERO : 0;
      }
      copied.add(new PointManifest.Disk(d.index(), d.disk().id(), d.disk().size(), chunkSize,
          generations, List.of(), 0));
    }
    PointManifest point = replica.commitInitial(copied, paths(logs));
    dropShipped(disks, logs);
    completeInitial(vm, siteName);
    log.info("[{}] initial copy of {} to {} committed as point {}", host.site(), vm.name(),
        siteName, point.pointId());
    return point.pointId();
  }

  /** Points in the bucket that this protection did not write must not pass for its copy. */
  private AgentException staleBucket(Vm vm, String siteName, String bucketVmId, String whose) {
    return new AgentException(ErrorCode.INVALID_STATE, "site " + siteName + " already holds"
        + " recovery points of VM " + vm.name() + " (bucket id " + bucketVmId + ") from " + whose
        + "; they are not this copy's, and are left as they are");
  }

  private void completeInitial(Vm vm, String siteName) throws IOException {
    if (!vm.record().protection().initialComplete()) {
      host.update(vm, rec -> rec.withProtection(new SourceProtection(siteName, true)));
    }
  }

  /**
   * How many chunks a step may have read and not yet stored: two per upload thread, and with a
   * cap no more than about a second of it (at least one), since a step that has spent its budget
   * still finishes these before it answers.
   */
  private static int inFlight(Double mbps, int chunkSize) {
    int most = 2 * UPLOAD_THREADS;
    if (mbps == null) {
      return most;
    }
    return (int) Math.max(1, Math.min(most, mbps * Transport.MB / chunkSize));
  }

  /** The chunk uploads of one step, {@link #UPLOAD_THREADS} at a time. */
  private final class Uploads {
    final BucketReplica replica;
    final ObjectStore store;
    final Site site;
    final ChunkCheckpoint checkpoint;
    final ChunkPipeline pipeline;

    Uploads(BucketReplica replica, ObjectStore store, Site site, ChunkCheckpoint checkpoint,
        int inFlight) {
      this.pipeline = new ChunkPipeline(UPLOAD_THREADS, inFlight);
      this.replica = replica;
      this.store = store;
      this.site = site;
      this.checkpoint = checkpoint;
    }

    /** Reads a chunk into the room the pipeline reserved and records or uploads it. */
    void chunk(DiskRef d, int chunk, int chunkSize) throws IOException {
      int length = (int) Math.min(chunkSize, d.disk().size() - (long) chunk * chunkSize);
      ByteBuffer buffer = ByteBuffer.allocate(length);
      try {
        d.disk().readAt((long) chunk * chunkSize, buffer);
        if (isZero(buffer.array())) {
          checkpoint.record(d.index(), chunk, ChunkCheckpoint.ZERO);
          pipeline.release();
          return;
        }
      } catch (IOException | RuntimeException e) {
        pipeline.release();
        throw e;
      }
      String key = replica.names().chunk(d.index(), chunk, 0);
      pipeline.submit(() -> {
        byte[] sealed = site.sealed().seal(key, buffer.array());
        store.put(key, sealed);
        checkpoint.record(d.index(), chunk, ChunkCheckpoint.STORED);
        pipeline.stored(sealed.length);
        metrics.shipped(d.vm(), AgentMetrics.Kind.RANGES, sealed.length);
      });
    }
  }

  /**
   * One delta cycle: seals every disk's log at one instant and ships the sealed generations not
   * in the bucket yet, committed as one new point. Safe to repeat after a failure: generations
   * the latest point already holds are dropped here, not sent again. With {@code quiesce}, the
   * VM's hook runs first, as for a peer's cycle; the point is app-consistent if it succeeded (the
   * point holds the state at this cycle's seal, whatever older generations it ships too).
   */
  public BucketCycleResult cycle(String vmName, String siteName, BucketCycleRequest request)
      throws IOException {
    Site site = site(siteName);
    Transport.TokenBucket pace = bandwidth(request == null ? null : request.bandwidthMBps());
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    long started = System.nanoTime();
    boolean ok = false;
    try {
      requireReplicating(vm, siteName);
      ResyncLedger.requireNoResyncUnderWay(vm);
      BucketReplica replica = replica(vm, site, store(site, pace));
      List<ObjectNames.ManifestName> points = replica.points();
      if (points.isEmpty()) {
        throw new AgentException(ErrorCode.INVALID_STATE, siteName + " holds no recovery point of"
            + " VM " + vmName + ": its initial copy must be made again (POST .../initial)");
      }
      PointManifest latest = replica.manifest(points.get(points.size() - 1).pointId());
      List<DiskRef> disks = disks(vm);
      QuiesceRunner.Outcome quiesce = request != null && Boolean.TRUE.equals(request.quiesce())
          ? QuiesceRunner.quiesce(host, vm) : null;
      boolean appConsistent = quiesce != null && quiesce.ok();
      long sealed = ReplicationSource.swapAll(vm);
      Map<Integer, List<SealedLog>> logs = sealedLogs(disks, latest);
      long bytes = logs.values().stream().flatMap(List::stream).mapToLong(SealedLog::sizeBytes)
          .sum();
      int count = logs.values().stream().mapToInt(List::size).sum();
      PointManifest point = replica.shipLogs(paths(logs), appConsistent);
      dropShipped(disks, logs);
      metrics.shipped(vmName, AgentMetrics.Kind.LOG, bytes);
      ok = true;
      return new BucketCycleResult(vmName, siteName, point.pointId(), sealed, count, bytes,
          appConsistent, quiesce == null ? null : quiesce.message());
    } finally {
      metrics.cycle(vmName, System.nanoTime() - started, ok);
      vm.operationLock().unlock();
    }
  }

  /**
   * The bucket's side of ending a protection: as a peer drops its replica, every object of the
   * VM in the bucket goes (its points first); the caller then forgets the protection. Called under
   * the VM's operation lock.
   */
  public void dropReplica(Vm vm, String siteName) throws IOException {
    Site site = site(siteName);
    int deleted = replica(vm, site, site.store()).deleteAll();
    log.info("[{}] protection of {} towards {} ends: its {} objects in the bucket deleted",
        host.site(), vm.name(), site.config(), deleted);
  }

  /**
   * Reverse replication into a bucket after a failback from that site: the VM, committed here
   * again, names the site as the target its protection awaits, and the bucket still holds its
   * points from before the failover. Rather than a new copy, those points become the protection's
   * base again, and a resync is marked required: it compares them chunk by chunk with the disks,
   * which moved on in the cloud and since. Refused when the bucket's latest point does not hold
   * these disks. Idempotent; {@code reattached} false for a VM whose initial copy to the site is
   * under way (its points are its own: the copy goes on).
   */
  public BucketReattachResult reattach(String vmName, String siteName) throws IOException {
    Site site = site(siteName);
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      requireTarget(vm, siteName);
      if (isBucketSource(vm, siteName)) {
        return new BucketReattachResult(vmName, siteName,
            vm.record().protection().initialComplete(), points(vmName, siteName).points().size());
      }
      if (vm.record().role() != VmRecord.Role.PRIMARY) {
        throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vmName + " on " + host.site()
            + " is a " + vm.record().role() + ", not a primary");
      }
      BucketReplica replica = replica(vm, site, site.store());
      List<Long> points = replica.pointIds();
      if (points.isEmpty()) {
        throw new AgentException(ErrorCode.INVALID_STATE, siteName + " holds no recovery point"
            + " of VM " + vmName + " to take up again: copy it (POST .../initial)");
      }
      PointManifest latest = replica.manifest(points.get(points.size() - 1));
      for (DiskRef d : disks(vm)) {
        if (latest.disks().stream().noneMatch(m -> m.index() == d.index()
            && m.diskId().equals(d.disk().id()) && m.size() == d.disk().size()
            && m.chunkSize() == site.config().chunkSize())) {
          throw new AgentException(ErrorCode.INVALID_STATE, "point " + latest.pointId() + " of "
              + vmName + " in " + siteName + " does not hold disk " + d.index() + " as it is: "
              + "these points are not this VM's to take up");
        }
      }
      Files.createDirectories(stateDir(vm, siteName)); // what isBucketSource looks for
      DurableFiles.forceDir(vm.dir());
      host.attachTrackers(vm);
      ResyncLedger.markRequired(vm, "the VM comes back to " + siteName + " after running "
          + "elsewhere: its points there are compared with the disks chunk by chunk");
      host.update(vm, rec -> rec.withProtection(new SourceProtection(siteName, true)));
      log.info("[{}] protection of {} towards {} takes up its {} points there again (latest {});"
          + " a resync is required", host.site(), vmName, site.config(), points.size(),
          latest.pointId());
      return new BucketReattachResult(vmName, siteName, true, points.size());
    } finally {
      vm.operationLock().unlock();
    }
  }

  /**
   * One bounded step of a resync towards the bucket, for a replica that no longer follows the
   * source (a lost or corrupt log, writes the tracker missed, objects damaged in the bucket). The
   * first step seals every disk's log at one instant under the operation lock: that generation is
   * the resync's, the sealed logs up to it are dropped (the disks hold their writes, and the
   * compare covers them) and writes after it go on being tracked in the newer logs. Each step
   * compares chunks of the bucket's latest point (the chunk object with that point's logs applied)
   * with the disk's chunks read now and stores those that differ as objects of the next point;
   * cycles and prunes are refused meanwhile ({@code RESYNC_IN_PROGRESS}). The step that finds
   * every chunk compared commits that point: the chunks and no log, its
   * {@code lastLogGeneration} the resync's generation, so the next cycle ships exactly the logs
   * sealed after it; the reason a resync was required is cleared then.
   */
  public BucketResyncProgress resync(String vmName, String siteName, BucketResyncRequest request)
      throws IOException {
    BucketResyncRequest r = request == null ? new BucketResyncRequest(null, null) : request;
    Duration budget = budget(r.budgetMillis());
    Transport.TokenBucket pace = bandwidth(r.bandwidthMBps());
    Site site = site(siteName);
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      requireReplicating(vm, siteName);
      CountingStore store = new CountingStore(store(site, pace));
      BucketReplica replica = replica(vm, site, store);
      List<ObjectNames.ManifestName> points = replica.points();
      if (points.isEmpty()) {
        throw new AgentException(ErrorCode.INVALID_STATE, siteName + " holds no recovery point"
            + " of VM " + vmName + " to resync against: copy it first (POST .../initial)");
      }
      PointManifest latest = replica.manifest(points.get(points.size() - 1).pointId());
      List<DiskRef> disks = disks(vm);
      int chunkSize = site.config().chunkSize();
      for (DiskRef d : disks) {
        if (latest.disks().stream().noneMatch(m -> m.index() == d.index()
            && m.diskId().equals(d.disk().id()) && m.size() == d.disk().size()
            && m.chunkSize() == chunkSize)) {
          throw new AgentException(ErrorCode.INVALID_STATE, "point " + latest.pointId() + " of "
              + vmName + " in " + siteName + " does not hold disk " + d.index() + " as it is ("
              + d.disk().size() + " bytes in chunks of " + chunkSize + "): copy the VM again");
        }
      }
      long[] chunks = disks.stream().mapToLong(d -> chunks(d.disk().size(), chunkSize)).toArray();
      long totalChunks = Arrays.stream(chunks).sum();
      Path checkpointFile = stateDir(vm, siteName).resolve(RESYNC_CHECKPOINT);
      ResyncLedger.State ledger = ResyncLedger.load(vm);
      Path baseFile = stateDir(vm, siteName).resolve(RESYNC_BASE);
      Long base = Files.exists(baseFile) ? Long.parseLong(Files.readString(baseFile).trim()) : null;
      if (!ledger.underWay() && ledger.completedGeneration() != null && base != null
          && latest.pointId() == base + 1) {
        // the step that committed it answers again (its answer was lost); no cycle since
        return new BucketResyncProgress(vmName, siteName, totalChunks, totalChunks, 0,
            store.downloaded(), 0, true, latest.pointId(), ledger.completedGeneration(),
            totalChunks, 0);
      }
      if (!ledger.underWay()) {
        ledger = ResyncLedger.begin(vm.dir(), ReplicationSource.swapAll(vm));
        base = null;
        log.info("[{}] resync of {} towards {} begins at generation {} against point {}",
            host.site(), vmName, siteName, ledger.generation(), latest.pointId());
      }
      if (base == null) {
        // cycles and prunes are refused from the ledger's begin on: latest is the base until
        // the resync commits the next point
        base = latest.pointId();
        DurableFiles.writeJson(baseFile, base);
      }
      long generation = ledger.generation();
      if (latest.pointId() > base) {
        // committed by a step that died before its bookkeeping
        ResyncLedger.completed(vm.dir(), generation);
        Files.deleteIfExists(checkpointFile);
        forgetResyncLogs(vm, siteName);
        return new BucketResyncProgress(vmName, siteName, totalChunks, totalChunks, 0,
            store.downloaded(), 0, true, latest.pointId(), generation, totalChunks, 0);
      }
      // Repeated on every step (a crash may come between the ledger and the deletions): the
      // sealed logs up to the resync's generation are covered by the compare.
      for (DiskRef d : disks) {
        for (SealedLog l : d.disk().tracker().sealedLogs()) {
          if (l.generation() <= generation) {
            d.disk().tracker().deleteSealed(l.generation());
          }
        }
      }
      // A reason that arrives during the resync (the agent found the images written while it
      // was down) makes the chunks compared before it stale: the compare starts over.
      String header = ChunkCheckpoint.resyncHeader(bucketVmId(vmName), chunkSize,
          disks.stream().map(d -> d.disk().id() + ":" + d.disk().size()).toList(),
          latest.pointId(), latest.revision(), generation,
          Integer.toHexString(Objects.hashCode(ledger.requiredReason())));
      long newPoint = latest.pointId() + 1;
      try (ChunkCheckpoint checkpoint = ChunkCheckpoint.open(checkpointFile, header, chunks)) {
        long skipped = checkpoint.done();
        ResyncLogs logs = resyncLogs(vm, siteName, header);
        Compares compares = new Compares(replica, store, site, checkpoint, newPoint,
            inFlight(r.bandwidthMBps(), chunkSize));
        boolean compared = false;
        // The budget is the compares': what comes before them (the points, the seal) is short,
        // and a disk's logs are indexed once per resync, so every step moves the resync on.
        long deadline = System.nanoTime() + budget.toNanos();
        try {
          compare:
          for (DiskRef d : disks) {
            if (!pending(checkpoint, d.index(), chunks[d.index()])) {
              continue;
            }
            PointManifest.Disk inBucket = latest.disk(d.index());
            LogIndex index = logs.disk(store, site.sealed(), replica.names(), inBucket);
            for (int c = 0; c < chunks[d.index()]; c++) {
              if (checkpoint.state(d.index(), c) != 0) {
                continue;
              }
              if (!compares.pipeline.reserve(deadline)) {
                break compare;
              }
              compares.chunk(d, inBucket, index, c);
            }
          }
          compares.pipeline.awaitAll();
          compared = true;
        } finally {
          // the compares under way finish (the step answers after them anyway) uninterrupted:
          // the log index they read is kept for the resync's next step
          compares.pipeline.finish();
          if (!compared) {
            // a compare cut short may have left an index unusable; the next step builds it anew
            forgetResyncLogs(vm, siteName);
          }
        }
        checkpoint.force();
        long done = checkpoint.done();
        Long pointId = null;
        if (done == totalChunks && System.nanoTime() < deadline) {
          pointId = commitResync(vm, siteName, replica, latest, disks, checkpoint, generation);
          checkpoint.delete();
          forgetResyncLogs(vm, siteName);
        }
        return new BucketResyncProgress(vmName, siteName, done, totalChunks,
            checkpoint.count(ChunkCheckpoint.STORED) + checkpoint.count(ChunkCheckpoint.ZERO),
            store.downloaded(), compares.pipeline.bytes.get(), pointId != null, pointId,
            generation, skipped, compares.pipeline.sent.get());
      }
    } finally {
      vm.operationLock().unlock();
    }
  }

  /** The logs of the resync {@code header} names, kept from its earlier steps if any. */
  private ResyncLogs resyncLogs(Vm vm, String siteName, String header) throws IOException {
    ResyncLogs logs = resyncLogs.get(vm.name() + "/" + siteName);
    if (logs != null && logs.resync().equals(header)) {
      return logs;
    }
    forgetResyncLogs(vm, siteName);
    logs = new ResyncLogs(header, stateDir(vm, siteName).resolve("scratch"));
    resyncLogs.put(vm.name() + "/" + siteName, logs);
    return logs;
  }

  private void forgetResyncLogs(Vm vm, String siteName) throws IOException {
    ResyncLogs logs = resyncLogs.remove(vm.name() + "/" + siteName);
    if (logs != null) {
      logs.close();
    }
  }

  private static boolean pending(ChunkCheckpoint checkpoint, int disk, long chunks) {
    for (int c = 0; c < chunks; c++) {
      if (checkpoint.state(disk, c) == 0) {
        return true;
      }
    }
    return false;
  }

  private long commitResync(Vm vm, String siteName, BucketReplica replica, PointManifest base,
      List<DiskRef> disks, ChunkCheckpoint checkpoint, long generation) throws IOException {
    List<PointManifest.Disk> resynced = new ArrayList<>();
    for (DiskRef d : disks) {
      PointManifest.Disk old = base.disk(d.index());
      long[] generations = old.chunkGenerations().clone();
      for (int c = 0; c < generations.length; c++) {
        byte state = checkpoint.state(d.index(), c);
        if (state == ChunkCheckpoint.STORED || state == ChunkCheckpoint.FOLDED) {
          generations[c] = base.pointId() + 1;
        } else if (state == ChunkCheckpoint.ZERO || state == ChunkCheckpoint.FOLDED_ZERO) {
          generations[c] = PointManifest.ZERO;
        }
      }
      resynced.add(new PointManifest.Disk(d.index(), old.diskId(), old.size(), old.chunkSize(),
          generations, List.of(), generation));
    }
    // Each chunk was read at its own moment after the resync's seal, so the chunks alone are no
    // image of any instant. Every write since that seal is in the logs sealed now: replayed in
    // order over the chunks they make the point the disks at this seal, as the initial copy's
    // logs make its point consistent.
    ReplicationSource.swapAll(vm);
    Map<Integer, List<SealedLog>> logs = new LinkedHashMap<>();
    for (DiskRef d : disks) {
      logs.put(d.index(), d.disk().tracker().sealedLogs().stream()
          .filter(l -> l.generation() > generation)
          .sorted(Comparator.comparingLong(SealedLog::generation)).toList());
    }
    PointManifest point = replica.commitResync(base.pointId(), resynced, paths(logs));
    dropShipped(disks, logs);
    ResyncLedger.completed(vm.dir(), generation);
    log.info("[{}] resync of {} towards {} committed as point {} (generation {}, {} chunks"
        + " differed)", host.site(), vm.name(), siteName, point.pointId(), generation,
        checkpoint.count(ChunkCheckpoint.STORED) + checkpoint.count(ChunkCheckpoint.ZERO));
    return point.pointId();
  }

  /**
   * The chunk compares of one resync step, {@link #UPLOAD_THREADS} at a time, with the same room
   * in flight as the initial copy's uploads.
   */
  private final class Compares {
    final BucketReplica replica;
    final ObjectStore store;
    final Site site;
    final ChunkCheckpoint checkpoint;
    final long newPoint;
    final ChunkPipeline pipeline;

    Compares(BucketReplica replica, ObjectStore store, Site site, ChunkCheckpoint checkpoint,
        long newPoint, int inFlight) {
      this.replica = replica;
      this.store = store;
      this.site = site;
      this.checkpoint = checkpoint;
      this.newPoint = newPoint;
      this.pipeline = new ChunkPipeline(UPLOAD_THREADS, inFlight);
    }

    /**
     * Reads the disk's chunk now and, in the pool, the bucket's, compares them and records or
     * stores it. The disk moves on during a resync, so the chunk stored may hold writes newer
     * than the resync's generation: those writes are in the logs sealed after it too, applied on
     * top again, which changes nothing a later write does not (a log's records are absolute
     * writes, applied in order).
     */
    void chunk(DiskRef d, PointManifest.Disk inBucket, LogIndex logs, int chunk)
        throws IOException {
      int chunkSize = inBucket.chunkSize();
      int length = inBucket.chunkLength(chunk);
      ByteBuffer local = ByteBuffer.allocate(length);
      try {
        d.disk().readAt((long) chunk * chunkSize, local);
      } catch (IOException | RuntimeException e) {
        pipeline.release();
        throw e;
      }
      pipeline.submit(() -> compare(d, inBucket, logs, chunk, local.array()));
    }

    private void compare(DiskRef d, PointManifest.Disk inBucket, LogIndex logs, int chunk,
        byte[] local) throws IOException {
      boolean touched = logs != null && logs.touches(chunk, inBucket.logGenerations());
      byte[] theirs = null;
      if (logs != null) {
        try {
          theirs = replica.readChunk(inBucket, chunk);
          if (touched) {
            logs.apply(chunk, (long) chunk * inBucket.chunkSize(), theirs,
                inBucket.logGenerations());
          }
        } catch (SealedObjectException e) {
          log.warn("[{}] resync of {}: chunk {} of disk {} in the bucket cannot be used ({});"
              + " it is stored again", host.site(), d.vm(), chunk, d.index(), e.getMessage());
        }
      }
      boolean equal = theirs != null && Arrays.equals(theirs, local);
      if (equal && !touched) {
        checkpoint.record(d.index(), chunk, ChunkCheckpoint.KEPT);
        return;
      }
      // the point names no log: a chunk a log touched is stored as the log left it
      if (isZero(local)) {
        checkpoint.record(d.index(), chunk,
            equal ? ChunkCheckpoint.FOLDED_ZERO : ChunkCheckpoint.ZERO);
        return;
      }
      String key = replica.names().chunk(d.index(), chunk, newPoint);
      byte[] sealed = site.sealed().seal(key, local);
      store.put(key, sealed);
      checkpoint.record(d.index(), chunk, equal ? ChunkCheckpoint.FOLDED : ChunkCheckpoint.STORED);
      pipeline.stored(sealed.length);
      metrics.shipped(d.vm(), AgentMetrics.Kind.RESYNC, sealed.length);
    }

  }

  public BucketPoints points(String vmName, String siteName) throws IOException {
    Site site = site(siteName);
    Vm vm = host.get(vmName);
    requireTarget(vm, siteName);
    return points(vmName, siteName, replica(vm, site, site.store()));
  }

  /**
   * The points of VM {@code vmName} in the bucket of {@code siteName}, asked of any agent that
   * knows the site, with or without the VM: after an unplanned failover the source may be lost,
   * and the recovery host lists them from the bucket alone. The same answer as {@link #points}.
   */
  public BucketPoints sitePoints(String siteName, String vmName) throws IOException {
    Names.requireValid("VM", vmName);
    Site site = site(siteName);
    // a listing reads manifests only; the scratch folder is never made
    return points(vmName, siteName, new BucketReplica(site.store(), site.sealed(),
        bucketVmId(vmName), site.config().chunkSize(), 1,
        host.dataDir().resolve("bucket-sites").resolve(siteName).resolve("scratch")));
  }

  private static BucketPoints points(String vmName, String siteName, BucketReplica replica)
      throws IOException {
    List<BucketPoint> points = new ArrayList<>();
    PointManifest latest = null;
    for (ObjectNames.ManifestName name : replica.points()) {
      latest = replica.manifest(name.pointId());
      points.add(new BucketPoint(latest.pointId(), latest.revision(), latest.createdMillis(),
          latest.appConsistent()));
    }
    List<BucketDisk> disks = latest == null ? List.of() : latest.disks().stream()
        .sorted(Comparator.comparingInt(PointManifest.Disk::index))
        .map(d -> new BucketDisk(BucketRecoveries.diskName(d.index()), d.size())).toList();
    return new BucketPoints(vmName, siteName, bucketVmId(vmName), points, disks);
  }

  /**
   * Retention: keeps the listed points and deletes older ones. The layout folds only the oldest
   * kept point's logs into chunks, so every point from the oldest listed on is kept.
   */
  public BucketPruneResult prune(String vmName, String siteName, BucketPruneRequest request)
      throws IOException {
    if (request == null || request.keep() == null || request.keep().isEmpty()
        || request.keep().size() > MAX_KEEP) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "keep lists 1 to " + MAX_KEEP
          + " point ids");
    }
    Site site = site(siteName);
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      requireTarget(vm, siteName);
      // a prune would fold the chunks the resync keeps and delete the ones it stored
      ResyncLedger.requireNoResyncUnderWay(vm);
      BucketReplica replica = replica(vm, site, site.store());
      List<Long> ids = replica.pointIds();
      TreeSet<Long> keep = new TreeSet<>(request.keep());
      for (Long id : keep) {
        if (id == null || !ids.contains(id)) {
          throw new AgentException(ErrorCode.BAD_REQUEST, "no point " + id + " of VM " + vmName
              + " in " + siteName + " (points: " + ids + ")");
        }
      }
      long oldest = keep.first();
      int kept = (int) ids.stream().filter(id -> id >= oldest).count();
      BucketReplica.PruneResult result = replica.prune(kept);
      return new BucketPruneResult(vmName, siteName, result.droppedPoints(),
          replica.pointIds(), result.chunksWritten(), result.objectsDeleted());
    } finally {
      vm.operationLock().unlock();
    }
  }

  private void requireTarget(Vm vm, String siteName) {
    SourceProtection p = vm.record().protection();
    if (p == null || !p.targetSite().equals(siteName)) {
      throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vm.name()
          + " is not replicated to " + siteName);
    }
  }

  private void requireReplicating(Vm vm, String siteName) {
    requireTarget(vm, siteName);
    if (!vm.record().protection().initialComplete()) {
      throw new AgentException(ErrorCode.INVALID_STATE, "the initial copy of " + vm.name()
          + " to " + siteName + " is not finished");
    }
  }

  /** A disk and its index in the VM (its place in the VM's record), which the bucket names. */
  private record DiskRef(String vm, int index, VirtualDisk disk) {}

  private static List<DiskRef> disks(Vm vm) {
    List<DiskRef> disks = new ArrayList<>();
    List<VmRecord.DiskSpec> specs = vm.record().disks();
    for (int i = 0; i < specs.size(); i++) {
      disks.add(new DiskRef(vm.name(), i, vm.disk(specs.get(i).name())));
    }
    return disks;
  }

  /**
   * Each disk's sealed logs, oldest first, leaving out (and deleting) the generations
   * {@code latest} already holds: a cycle that failed after its commit left them here.
   */
  private static Map<Integer, List<SealedLog>> sealedLogs(List<DiskRef> disks,
      PointManifest latest) throws IOException {
    Map<Integer, List<SealedLog>> logs = new LinkedHashMap<>();
    for (DiskRef d : disks) {
      long shipped = latest == null ? 0 : latest.disk(d.index()).lastLogGeneration();
      List<SealedLog> pending = new ArrayList<>();
      for (SealedLog l : d.disk().tracker().sealedLogs().stream()
          .sorted(Comparator.comparingLong(SealedLog::generation)).toList()) {
        if (l.generation() <= shipped) {
          d.disk().tracker().deleteSealed(l.generation());
        } else {
          pending.add(l);
        }
      }
      logs.put(d.index(), pending);
    }
    return logs;
  }

  private static Map<Integer, List<Path>> paths(Map<Integer, List<SealedLog>> logs) {
    Map<Integer, List<Path>> paths = new LinkedHashMap<>();
    logs.forEach((disk, list) -> paths.put(disk, list.stream().map(SealedLog::path).toList()));
    return paths;
  }

  private static void dropShipped(List<DiskRef> disks, Map<Integer, List<SealedLog>> logs)
      throws IOException {
    for (DiskRef d : disks) {
      for (SealedLog l : logs.getOrDefault(d.index(), List.of())) {
        d.disk().tracker().deleteSealed(l.generation());
      }
    }
  }

  private static ObjectStore store(Site site, Transport.TokenBucket pace) {
    return pace == null ? site.store() : new PacedStore(site.store(), pace);
  }

  private BucketReplica replica(Vm vm, Site site, ObjectStore store) {
    return new BucketReplica(store, site.sealed(), bucketVmId(vm.name()),
        site.config().chunkSize(), UPLOAD_THREADS,
        stateDir(vm, site.config().name()).resolve("scratch"));
  }

  /**
   * Whether VM {@code vm} replicates to the bucket of {@code siteName} rather than to that
   * site's agent: a site may be both, and the protection record names the site only. The
   * bucket's state folder beside the VM is made when the protection starts and goes with it.
   */
  public static boolean isBucketSource(Vm vm, String siteName) {
    SourceProtection p = vm.record().protection();
    return p != null && p.targetSite().equals(siteName)
        && Files.isDirectory(stateDir(vm, siteName));
  }

  /**
   * Forgets that the VM was a bucket's source (checkpoint, scratch, the marker above) once it
   * stops being one: reversed into a replica, or its protection ended. A later protection
   * towards the bucket then starts from nothing local, as the first did. Idempotent.
   */
  public static void forgetSource(Vm vm) throws IOException {
    try (java.util.stream.Stream<Path> files = Files.list(vm.dir())) {
      for (Path dir : files.filter(f -> f.getFileName().toString().startsWith(DIR)
          && Files.isDirectory(f)).toList()) {
        DurableFiles.deleteTree(dir);
      }
    }
  }

  private static Path stateDir(Vm vm, String siteName) {
    return vm.dir().resolve(DIR + siteName);
  }

  private Site site(String name) {
    Site site = sites.get(name);
    if (site == null) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "site " + name + " is not an object-store"
          + " site of the agent of " + host.site() + " (known: " + sites.keySet() + ")");
    }
    return site;
  }

  private static Duration budget(Long millis) {
    if (millis == null) {
      return DEFAULT_BUDGET;
    }
    if (millis < 1 || millis > MAX_BUDGET.toMillis()) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "budgetMillis must be between 1 and "
          + MAX_BUDGET.toMillis() + ", got " + millis);
    }
    return Duration.ofMillis(millis);
  }

  private static Transport.TokenBucket bandwidth(Double mbps) {
    Transport.validate(new TransferOptions(false, mbps));
    return mbps == null ? null
        : new Transport.TokenBucket(mbps * Transport.MB, Transport.TokenBucket.SYSTEM);
  }

  private static long chunks(long size, int chunkSize) {
    return (size + chunkSize - 1) / chunkSize;
  }

  private static long doneBytes(ChunkCheckpoint checkpoint, List<DiskRef> disks, long[] chunks,
      int chunkSize) {
    long bytes = 0;
    for (DiskRef d : disks) {
      for (int c = 0; c < chunks[d.index()]; c++) {
        if (checkpoint.state(d.index(), c) != 0) {
          bytes += Math.min(chunkSize, d.disk().size() - (long) c * chunkSize);
        }
      }
    }
    return bytes;
  }

  private static final byte[] ZEROES = new byte[64 << 10];

  private static boolean isZero(byte[] buffer) {
    for (int from = 0; from < buffer.length; from += ZEROES.length) {
      int n = Math.min(ZEROES.length, buffer.length - from);
      if (Arrays.mismatch(buffer, from, from + n, ZEROES, 0, n) != -1) {
        return false;
      }
    }
    return true;
  }

  @Override
  public void close() {
    for (ResyncLogs logs : resyncLogs.values()) {
      try {
        logs.close();
      } catch (IOException e) {
        log.warn("[{}] resync log data not removed: {}", host.site(), e.getMessage());
      }
    }
    sites.values().forEach(s -> s.store().close());
  }
}
