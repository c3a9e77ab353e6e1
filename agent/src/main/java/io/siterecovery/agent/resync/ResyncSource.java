package io.siterecovery.agent.resync;

import io.siterecovery.agent.source.ReplicationSource;
import io.siterecovery.agent.transport.RangeStream;
import io.siterecovery.agent.transport.Transport;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentClient;
import io.siterecovery.agent.api.AgentMessages.BlockDigest;
import io.siterecovery.agent.api.AgentMessages.ChecksumRequest;
import io.siterecovery.agent.api.AgentMessages.ResyncBegin;
import io.siterecovery.agent.api.AgentMessages.ResyncStepRequest;
import io.siterecovery.agent.api.AgentMessages.ResyncStepResult;
import io.siterecovery.agent.api.AgentMessages.TransferOptions;
import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.metrics.AgentMetrics;
import io.siterecovery.agent.hrl.ChangeTracker.SealedLog;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.SourceProtection;
import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.function.Function;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The source side of a resync by fixed-block checksums (seeds, "Resynchronisation").
 *
 * <ol>
 *   <li>{@link #begin}: every disk's active log is sealed at one instant (generation g, the same
 *       write hold as a delta cycle's swap); the sealed logs not yet shipped, up to g, are
 *       discarded, because their effect is in the source disks that the resync compares; the
 *       replica records that it is being resynchronised to g. Writes go on being tracked in
 *       g+1 onwards.</li>
 *   <li>{@link #step}, repeated per disk by the caller with a block cursor: this agent and the
 *       replica compute digests of the same run of blocks at the same time (XXH3-128 keyed with the
 *       resync's secret seed, or SHA-256; see {@link BlockChecksums}), and the blocks whose
 *       digests differ are read again and sent with the ranges transfer.</li>
 *   <li>{@link #complete}: once every disk was compared to its end, the replica's applied
 *       generation becomes g. The next delta cycle ships g+1 (every write made since begin), and
 *       when it is applied the replica equals the source at g+1's seal: the first recovery point
 *       after a resync.</li>
 * </ol>
 *
 * <p>Everything is resumable: begin again returns the recorded g, a step can be repeated, and the
 * source keeps per disk how far steps taken in order got ({@link ResyncLedger}), so complete is
 * refused while a disk was not compared to its end. Delta cycles are refused meanwhile.
 */
public final class ResyncSource {
  private static final Logger log = LoggerFactory.getLogger(ResyncSource.class);

  /**
   * 64 KiB: fine enough that a scattered 4 KiB guest write costs 64 KiB on the wire, coarse
   * enough that the digests are 1/2048 of the disk (2 MiB for 4 GiB) and each block is one cheap
   * hash call. It is also the default cluster size of qcow2 and VHDX's smallest block unit.
   */
  public static final int DEFAULT_BLOCK_SIZE = 64 << 10;
  public static final int MIN_BLOCK_SIZE = 512;
  public static final int MAX_BLOCK_SIZE = 16 << 20;
  /** Bounds a step's digest list to 8 MiB. */
  public static final int MAX_BLOCKS_PER_STEP = 1 << 18;

  private final VmHost host;
  private final Function<String, AgentClient> peers;
  private final AgentMetrics metrics;

  public ResyncSource(VmHost host, Function<String, AgentClient> peers, AgentMetrics metrics) {
    this.host = host;
    this.peers = peers;
    this.metrics = metrics;
  }

  private static SourceProtection requireProtection(Vm vm) {
    SourceProtection p = vm.record().protection();
    if (p == null || vm.record().role() != VmRecord.Role.PRIMARY) {
      throw new AgentException(ErrorCode.INVALID_STATE, "VM " + vm.name() + " is not protected");
    }
    return p;
  }

  public ResyncBegin begin(String vmName) throws IOException {
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      SourceProtection p = requireProtection(vm);
      ResyncLedger.State state = ResyncLedger.load(vm);
      long generation;
      if (state.underWay()) {
        generation = state.generation();
      } else {
        generation = ReplicationSource.swapAll(vm);
        ResyncLedger.begin(vm.dir(), generation);
        log.info("[{}] resync of {} begins at generation {}", host.site(), vmName, generation);
      }
      // Repeated on a resumed begin: each of these is idempotent.
      peers.apply(p.targetSite()).beginReplicaResync(vmName, generation);
      for (VirtualDisk d : vm.disks()) {
        for (SealedLog l : d.tracker().sealedLogs()) {
          if (l.generation() <= generation) {
            d.tracker().deleteSealed(l.generation());
          }
        }
      }
      return new ResyncBegin(generation);
    } finally {
      vm.operationLock().unlock();
    }
  }

  static int blockSize(int requested) {
    int size = requested == 0 ? DEFAULT_BLOCK_SIZE : requested;
    if (size < MIN_BLOCK_SIZE || size > MAX_BLOCK_SIZE || size % MIN_BLOCK_SIZE != 0) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "blockSize " + requested + " must be a"
          + " multiple of 512 between 512 and " + MAX_BLOCK_SIZE + " bytes (0: "
          + DEFAULT_BLOCK_SIZE + ")");
    }
    return size;
  }

  public ResyncStepResult step(String vmName, String diskName, ResyncStepRequest request)
      throws IOException {
    if (request == null) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "a resync step needs a body");
    }
    Vm vm = host.get(vmName);
    SourceProtection p = requireProtection(vm);
    ResyncLedger.State state = ResyncLedger.load(vm);
    if (!state.underWay()) {
      throw new AgentException(ErrorCode.INVALID_STATE, "no resync of " + vmName
          + " is under way: begin one first");
    }
    VirtualDisk disk = vm.disk(diskName);
    int blockSize = blockSize(request.blockSize());
    TransferOptions transfer = Transport.validate(request.transfer());
    BlockDigest digest = request.digest() == null ? BlockDigest.DEFAULT : request.digest();
    long total = BlockChecksums.blockCount(disk.size(), blockSize);
    long from = request.fromBlock();
    if (from < 0 || from > total) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "fromBlock " + from + " outside disk "
          + diskName + " of " + total + " blocks");
    }
    if (request.maxBlocks() <= 0) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "maxBlocks must be positive");
    }
    int count = (int) Math.min(Math.min(request.maxBlocks(), MAX_BLOCKS_PER_STEP), total - from);
    if (count == 0) {
      return new ResyncStepResult(total, total, 0, 0, 0);
    }
    AgentClient peer = peers.apply(p.targetSite());
    long seed = state.seed() != null ? state.seed()
        : ResyncLedger.seed(vm.dir(), state.generation());
    ChecksumRequest asked = new ChecksumRequest(from, count, blockSize, digest, seed);

    // Both sides hash the same blocks at the same time: the replica on its own disks, this agent
    // here, each overlapping its reads with its hashing.
    CompletableFuture<byte[]> remote = CompletableFuture.supplyAsync(() ->
        peer.replicaChecksums(vmName, diskName, asked), BlockChecksums.READERS);
    byte[] ours;
    try {
      ours = BlockChecksums.compute(disk, from, count, blockSize, digest, seed);
    } catch (IOException | RuntimeException e) {
      remote.cancel(true);
      throw e;
    }
    byte[] theirs = join(remote);
    if (theirs.length != ours.length) {
      throw new AgentException(ErrorCode.TRANSFER_CORRUPT, "replica sent " + theirs.length
          + " bytes of checksums for " + count + " blocks");
    }

    List<long[]> extents = new ArrayList<>();
    long differing = 0;
    int d = digest.bytes();
    for (int i = 0; i < count; i++) {
      if (Arrays.mismatch(ours, i * d, (i + 1) * d, theirs, i * d, (i + 1) * d) < 0) {
        continue;
      }
      differing++;
      long offset = (from + i) * blockSize;
      long length = Math.min(blockSize, disk.size() - offset);
      long[] last = extents.isEmpty() ? null : extents.get(extents.size() - 1);
      if (last != null && last[0] + last[1] == offset) {
        last[1] += length;
      } else {
        extents.add(new long[] {offset, length});
      }
    }
    long sent = 0;
    if (!extents.isEmpty()) {
      RangeStream.ExtentSender sender = new RangeStream.ExtentSender(disk, extents);
      peer.sendRanges(vmName, diskName, () -> sender, transfer);
      sent = sender.bytesSent();
      metrics.shipped(vmName, AgentMetrics.Kind.RESYNC, sent);
    }
    long next = from + count;
    ResyncLedger.recordStep(vm.dir(), state.generation(), diskName, from * blockSize,
        Math.min(disk.size(), next * blockSize));
    log.debug("[{}] resync {}/{} blocks {}..{}: {} differ, {} bytes sent", host.site(), vmName,
        diskName, from, next, differing, sent);
    return new ResyncStepResult(next, total, count, differing, sent);
  }

  private static byte[] join(CompletableFuture<byte[]> future) {
    try {
      return future.join();
    } catch (CompletionException e) {
      if (e.getCause() instanceof RuntimeException re) {
        throw re;
      }
      throw e;
    }
  }

  /** Ends the resync: the replica's applied generation becomes the resync's generation. */
  public VmRecord complete(String vmName) throws IOException {
    Vm vm = host.get(vmName);
    vm.operationLock().lock();
    try {
      SourceProtection p = requireProtection(vm);
      ResyncLedger.State state = ResyncLedger.load(vm);
      if (!state.underWay() && state.completedGeneration() != null) {
        // A retry whose first attempt completed here but never got the answer back (its worker
        // died): the replica completes idempotently and says where it stands.
        return peers.apply(p.targetSite())
            .completeReplicaResync(vmName, state.completedGeneration());
      }
      if (!state.underWay()) {
        throw new AgentException(ErrorCode.INVALID_STATE, "no resync of " + vmName
            + " is under way");
      }
      for (VirtualDisk d : vm.disks()) {
        long done = state.resynced(d.name());
        if (done < d.size()) {
          throw new AgentException(ErrorCode.INVALID_STATE, "resync of " + vmName + "/"
              + d.name() + " has compared " + done + " of " + d.size() + " bytes in order;"
              + " step through the disk to its end (from block 0 if progress was reset)");
        }
      }
      VmRecord replica = peers.apply(p.targetSite())
          .completeReplicaResync(vmName, state.generation());
      ResyncLedger.completed(vm.dir(), state.generation());
      log.info("[{}] resync of {} complete at generation {}", host.site(), vmName,
          state.generation());
      return replica;
    } finally {
      vm.operationLock().unlock();
    }
  }
}
