package io.siterecovery.agent.hrl;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The replication tracker of one disk: the active .hrl beside the disk and the sealed logs not yet
 * shipped. Callers serialise {@link #recordWrite}, {@link #recordZero} and {@link #swap} with the
 * disk writes they describe.
 */
public final class ChangeTracker {
  private static final Logger log = LoggerFactory.getLogger(ChangeTracker.class);

  /** A sealed, immutable log waiting to be shipped. */
  public record SealedLog(long generation, Path path, long sizeBytes) {}

  private final Path dir;
  private final String disk;
  private final UUID diskId;
  private final long diskSize;
  private HrlWriter active;
  /**
   * The active log was sealed but the next one could not be created (the disk was full): the
   * next record, force or swap creates it first. Without this the tracker kept the sealed,
   * closed writer, and every later write and swap failed until the agent restarted.
   */
  private boolean activeSealed;
  /**
   * Bytes of changes recorded since this tracker opened, for metrics. Volatile, not atomic: the
   * callers serialise the writes (one writer), and a scrape only reads it.
   */
  private volatile long recordedBytes;

  private ChangeTracker(Path dir, String disk, UUID diskId, long diskSize) {
    this.dir = dir;
    this.disk = disk;
    this.diskId = diskId;
    this.diskSize = diskSize;
  }

  /**
   * Opens the tracker of a disk, recovering after a crash: a sealed last log is followed by a new
   * one, an unsealed last log is reopened with any torn tail cut off.
   */
  public static ChangeTracker open(Path dir, String disk, UUID diskId, long diskSize,
      long firstGeneration) throws IOException {
    ChangeTracker tracker = new ChangeTracker(dir, disk, diskId, diskSize);
    List<Long> generations = tracker.generationsOnDisk();
    if (generations.isEmpty()) {
      tracker.active = HrlWriter.create(tracker.pathOf(firstGeneration), tracker.header(firstGeneration));
      return tracker;
    }
    long last = generations.get(generations.size() - 1);
    Path lastPath = tracker.pathOf(last);
    if (Files.size(lastPath) < HrlFormat.HEADER_SIZE) {
      // A crash while the log was being created (first enable, or a swap after the previous log
      // was sealed) leaves its header short. Records are appended only after the header is
      // durable, so this log never held a change: start it again.
      log.warn("{}: header cut short by a crash during log creation; recreating it",
          lastPath.getFileName());
      Files.delete(lastPath);
      tracker.active = HrlWriter.create(lastPath, tracker.header(last));
      return tracker;
    }
    HrlReader.Scan scan = HrlReader.scan(lastPath);
    if (!scan.header().diskId().equals(diskId)) {
      throw new HrlCorruptException(lastPath + " belongs to another disk");
    }
    if (scan.sealed()) {
      tracker.active = HrlWriter.create(tracker.pathOf(last + 1), tracker.header(last + 1));
    } else {
      if (scan.tornReason() != null) {
        log.warn("{}: torn tail after {} records ({}); truncating to {} bytes",
            lastPath.getFileName(), scan.records(), scan.tornReason(), scan.validEnd());
      }
      tracker.active = HrlWriter.resume(lastPath, scan);
    }
    return tracker;
  }

  private HrlHeader header(long generation) {
    return new HrlHeader(diskId, generation, diskSize, System.currentTimeMillis());
  }

  private Path pathOf(long generation) {
    return dir.resolve(HrlFormat.fileName(disk, generation));
  }

  private List<Long> generationsOnDisk() throws IOException {
    try (Stream<Path> files = Files.list(dir)) {
      return files.map(p -> HrlFormat.generationOf(disk, p.getFileName().toString()))
          .filter(g -> g >= 0).sorted().toList();
    }
  }

  public void recordWrite(long offset, ByteBuffer data) throws IOException {
    requireInsideDisk(offset, data.remaining());
    ensureActive();
    int length = data.remaining();
    active.appendWrite(offset, data);
    recordedBytes += length;
  }

  public void recordZero(long offset, long length) throws IOException {
    requireInsideDisk(offset, length);
    ensureActive();
    active.appendZero(offset, length);
    recordedBytes += length;
  }

  /** Bytes of writes and zeroed ranges recorded since this tracker opened. */
  public long recordedBytes() {
    return recordedBytes;
  }

  /**
   * A record outside the disk would make the log unreadable for the replica (it would need a
   * resync), and the disk writes the image only after the record: refusing here keeps both intact.
   */
  private void requireInsideDisk(long offset, long length) throws IOException {
    if (!HrlFormat.insideDisk(offset, length, diskSize)) {
      throw new IOException(disk + ": change of " + length + " bytes at " + offset
          + " is outside the disk of " + diskSize + " bytes");
    }
  }

  public void force() throws IOException {
    if (!activeSealed) { // a sealed log is durable already, and nothing was appended since
      active.force();
    }
  }

  /**
   * Seals the active log and opens the next one; returns the sealed generation. If the next
   * one cannot be created (ENOSPC), the sealed log stays the tracker's until a later record or
   * swap creates it.
   */
  public long swap() throws IOException {
    ensureActive();
    long sealed = active.generation();
    active.seal();
    activeSealed = true;
    ensureActive();
    return sealed;
  }

  /** Creates the log after a sealed one, if a swap could not (see {@link #activeSealed}). */
  private void ensureActive() throws IOException {
    if (!activeSealed) {
      return;
    }
    long next = active.generation() + 1;
    // A create cut short by ENOSPC may have left the file, with at most its header: no record.
    Files.deleteIfExists(pathOf(next));
    active = HrlWriter.create(pathOf(next), header(next));
    activeSealed = false;
  }

  public long activeGeneration() {
    return active.generation();
  }

  public long activeRecords() {
    return activeSealed ? 0 : active.records();
  }

  public List<SealedLog> sealedLogs() {
    try {
      List<SealedLog> logs = new ArrayList<>();
      for (long g : generationsOnDisk()) {
        if (g < active.generation()) {
          Path p = pathOf(g);
          logs.add(new SealedLog(g, p, Files.size(p)));
        }
      }
      return logs;
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Bytes held in logs not yet acknowledged by the replica, active log included. */
  public long pendingBytes() {
    return sealedLogs().stream().mapToLong(SealedLog::sizeBytes).sum() + active.sizeBytes();
  }

  public void deleteSealed(long generation) throws IOException {
    if (generation >= active.generation()) {
      throw new IllegalArgumentException("generation " + generation + " is not sealed");
    }
    Files.deleteIfExists(pathOf(generation));
  }

  /** Stops tracking and removes every log of this disk. */
  public void stop() throws IOException {
    active.close();
    for (long g : generationsOnDisk()) {
      Files.deleteIfExists(pathOf(g));
    }
  }

  public void close() throws IOException {
    active.close();
  }
}
