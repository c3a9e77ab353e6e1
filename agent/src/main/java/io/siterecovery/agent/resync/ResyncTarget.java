package io.siterecovery.agent.resync;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages.BlockDigest;
import io.siterecovery.agent.api.AgentMessages.ChecksumRequest;
import io.siterecovery.agent.api.AgentMessages.ResyncBegin;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.vm.Vm;
import io.siterecovery.agent.vm.VmHost;
import io.siterecovery.agent.vm.VmRecord;
import io.siterecovery.agent.vm.VmRecord.ReplicaState;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The replica side of a resync (see {@link ResyncSource}). While a resync is recorded in
 * {@code <vm dir>/resync.json} (kept out of the VM record) the replica's disks are being repaired
 * block by block through the ranges transfer; completing it makes the resync's generation the
 * applied one and removes the file.
 */
public final class ResyncTarget {
  private static final Logger log = LoggerFactory.getLogger(ResyncTarget.class);
  static final String FILE = "resync.json";

  /** What the replica records while it is being resynchronised. */
  public record Marker(long generation, Instant since) {}

  private final VmHost host;

  public ResyncTarget(VmHost host) {
    this.host = host;
  }

  /** The resync recorded for a replica, or null. */
  public static Marker marker(Vm vm) throws IOException {
    Path file = vm.dir().resolve(FILE);
    return Files.exists(file) ? Json.MAPPER.readValue(file.toFile(), Marker.class) : null;
  }

  /**
   * Records that the replica is being resynchronised to {@code generation} and drops the staged
   * logs up to it, which the resync makes moot. Idempotent.
   */
  public ResyncBegin begin(String vmName, long generation) throws IOException {
    Vm vm = host.getReplica(vmName);
    vm.operationLock().lock();
    try {
      host.replicaWatcher().beforeRewrite(vm, "a resync");
      ReplicaState state = vm.record().replica();
      if (generation < state.appliedGeneration()) {
        throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vmName + " has applied"
            + " generation " + state.appliedGeneration() + ", past resync generation " + generation);
      }
      Marker existing = marker(vm);
      if (existing == null || existing.generation() != generation) {
        if (existing != null) {
          log.warn("[{}] replica {}: resync to generation {} replaces one to {}", host.site(),
              vmName, generation, existing.generation());
        }
        write(vm.dir(), new Marker(generation, Instant.now()));
        log.info("[{}] replica {} is being resynchronised to generation {}", host.site(), vmName,
            generation);
      }
      dropStaged(vm, generation);
      return new ResyncBegin(generation);
    } finally {
      vm.operationLock().unlock();
    }
  }

  private static void dropStaged(Vm vm, long upTo) throws IOException {
    Path incoming = vm.dir().resolve("incoming");
    if (!Files.isDirectory(incoming)) {
      return;
    }
    try (Stream<Path> files = Files.list(incoming)) {
      for (Path f : files.toList()) {
        String name = f.getFileName().toString();
        String base = name.endsWith(".part") ? name.substring(0, name.length() - 5) : name;
        for (VmRecord.DiskSpec d : vm.record().disks()) {
          long g = HrlFormat.generationOf(d.name(), base);
          if (g >= 0 && g <= upTo) {
            Files.deleteIfExists(f);
          }
        }
      }
    }
  }

  /**
   * The digest of each requested block of the replica disk, in order: XXH3-128 keyed with the
   * request's seed (16 bytes each) or SHA-256 (32 bytes each). No digest named: SHA-256, which is
   * what a source agent from before keyed digests expects.
   */
  public byte[] checksums(String vmName, String diskName, ChecksumRequest request)
      throws IOException {
    Vm vm = host.getReplica(vmName);
    int blockSize = ResyncSource.blockSize(request.blockSize());
    if (request.count() < 0 || request.count() > ResyncSource.MAX_BLOCKS_PER_STEP) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "count must be between 0 and "
          + ResyncSource.MAX_BLOCKS_PER_STEP);
    }
    BlockDigest digest = request.digest() == null ? BlockDigest.SHA_256 : request.digest();
    return BlockChecksums.compute(vm.disk(diskName), request.fromBlock(), request.count(),
        blockSize, digest, request.seed());
  }

  /**
   * Makes {@code generation} the applied one and forgets the resync. Repeating it after it
   * succeeded returns the record unchanged.
   */
  public VmRecord complete(String vmName, long generation) throws IOException {
    Vm vm = host.getReplica(vmName);
    vm.operationLock().lock();
    try {
      Marker m = marker(vm);
      ReplicaState s = vm.record().replica();
      if (m == null) {
        if (s.appliedGeneration() >= generation) {
          return vm.record(); // completed before; the source is repeating itself
        }
        throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vmName
            + " is not being resynchronised");
      }
      if (m.generation() != generation) {
        throw new AgentException(ErrorCode.INVALID_STATE, "replica " + vmName + " is being"
            + " resynchronised to generation " + m.generation() + ", not " + generation);
      }
      for (var d : vm.disks()) {
        d.forceImage();
      }
      // No point time and no points: the disks hold a mix of data from g and later until g+1 is
      // applied, and the older points' undo data does not cover the resync's writes.
      host.update(vm, r -> r.withReplica(new ReplicaState(s.sourceSite(), s.initialComplete(),
          generation, null, java.util.List.of())));
      Files.deleteIfExists(vm.dir().resolve(FILE));
      log.info("[{}] replica {} resynchronised to generation {}", host.site(), vmName, generation);
      return vm.record();
    } finally {
      vm.operationLock().unlock();
    }
  }

  private static void write(Path dir, Marker marker) throws IOException {
    Path tmp = dir.resolve(FILE + ".tmp");
    byte[] json = Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(marker);
    try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.wrap(json));
      ch.force(true);
    }
    Files.move(tmp, dir.resolve(FILE), StandardCopyOption.ATOMIC_MOVE,
        StandardCopyOption.REPLACE_EXISTING);
  }
}
