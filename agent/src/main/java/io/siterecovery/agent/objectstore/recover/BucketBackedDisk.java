package io.siterecovery.agent.objectstore.recover;

import io.siterecovery.agent.nbd.BlockDevice;
import io.siterecovery.agent.nbd.DeviceUnavailableException;
import io.siterecovery.agent.objectstore.ObjectCorruptException;
import io.siterecovery.agent.objectstore.ObjectMissingException;
import io.siterecovery.agent.objectstore.ObjectNames;
import io.siterecovery.agent.objectstore.ObjectStore;
import io.siterecovery.agent.objectstore.PointManifest;
import io.siterecovery.agent.objectstore.SealedObjectException;
import io.siterecovery.agent.objectstore.SealedObjects;
import java.io.Closeable;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.io.InterruptedIOException;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicLong;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A disk at a recovery point in a bucket, served before it is local: the image file beside it
 * fills chunk by chunk. A read or write of a chunk that is not local yet first fetches that
 * chunk's object (authenticated whole: a 4 MiB chunk is what one segment read saves little
 * over), applies the point's log records that touch it, writes it into the image, makes it
 * durable and marks it present in the {@link ChunkLedger}. The VM's writes go to the image once
 * their chunks are present (fetch before write, also for a partial chunk) and are marked in the
 * ledger, so failback can find them. A chunk whose object is missing, damaged or another's
 * fails with {@link ChunkUnavailableException} (EIO to an NBD client) and is never served.
 */
public final class BucketBackedDisk implements BlockDevice, Closeable {
  private static final Logger log = LoggerFactory.getLogger(BucketBackedDisk.class);

  private final String label;
  private final ObjectStore store;
  private final SealedObjects sealed;
  private final ObjectNames names;
  private final PointManifest.Disk disk;
  private final PointReader point;
  /** The point's newest revision read so far: a prune may have folded logs into new chunks. */
  private volatile PointManifest.Disk current;
  private final LogIndex logs;
  private final FileChannel image;
  private final ChunkLedger ledger;
  /** Fetched chunks whose present marks are written together, after one force of the image. */
  private static final int COMMIT_EVERY = 16;

  private final Map<Long, CompletableFuture<Void>> fetching = new ConcurrentHashMap<>();
  private final AtomicLong fetchedBytes = new AtomicLong();
  private volatile boolean online = true;

  private BucketBackedDisk(String label, ObjectStore store, SealedObjects sealed,
      ObjectNames names, PointManifest.Disk disk, PointReader point, LogIndex logs,
      FileChannel image, ChunkLedger ledger) {
    this.label = label;
    this.store = store;
    this.sealed = sealed;
    this.names = names;
    this.disk = disk;
    this.current = disk;
    this.point = point;
    this.logs = logs;
    this.image = image;
    this.ledger = ledger;
  }

  /**
   * Opens (or, after a restart, reopens) disk {@code disk} in {@code dir}: the image
   * {@code disk<index>.img}, sparse at first, its ledger, and the point's logs fetched and
   * indexed. No chunk is fetched here.
   */
  public static BucketBackedDisk open(Path dir, String label, ObjectStore store,
      SealedObjects sealed, ObjectNames names, PointManifest.Disk disk, PointReader point)
      throws IOException {
    Path imagePath = dir.resolve("disk" + disk.index() + ".img");
    if (!Files.exists(imagePath)) {
      try (RandomAccessFile file = new RandomAccessFile(imagePath.toFile(), "rw")) {
        file.setLength(disk.size());
      }
    } else if (Files.size(imagePath) != disk.size()) {
      throw new IOException(imagePath + " has " + Files.size(imagePath) + " bytes, the disk at "
          + "this point has " + disk.size());
    }
    LogIndex logs = LogIndex.build(store, sealed, names, disk,
        dir.resolve("disk" + disk.index() + ".logdata"), dir.resolve("scratch"));
    ChunkLedger ledger = null;
    try {
      ledger = new ChunkLedger(dir.resolve("disk" + disk.index() + ".ledger"), disk.chunks());
      FileChannel image = FileChannel.open(imagePath, java.nio.file.StandardOpenOption.READ,
          java.nio.file.StandardOpenOption.WRITE);
      return new BucketBackedDisk(label, store, sealed, names, disk, point, logs, image,
          ledger);
    } catch (IOException | RuntimeException e) {
      logs.close();
      if (ledger != null) {
        ledger.close();
      }
      throw e;
    }
  }

  public String label() {
    return label;
  }

  public long chunks() {
    return disk.chunks();
  }

  public boolean present(long chunk) {
    return ledger.present(chunk);
  }

  /** Bytes of the disk that are local (present chunks). */
  public long localBytes() {
    long n = ledger.presentCount() * disk.chunkSize();
    if (ledger.present(disk.chunks() - 1)) {
      n -= disk.chunkSize() - disk.chunkLength(disk.chunks() - 1);
    }
    return n;
  }

  /** Bytes downloaded from the bucket by this process (chunk objects; zero chunks cost none). */
  public long fetchedBytes() {
    return fetchedBytes.get();
  }

  /** Chunks the VM has written since the recovery started (4 MiB granularity by default). */
  public List<Long> writtenChunks() {
    return ledger.writtenChunks();
  }

  /**
   * The byte ranges ({start, end}) of the chunks the VM has written, adjacent ones merged: an
   * honest record, chunk-granular, of what it changed since the point.
   */
  public List<long[]> writtenRanges() {
    List<long[]> ranges = new java.util.ArrayList<>();
    for (long chunk : ledger.writtenChunks()) {
      long start = chunk * disk.chunkSize();
      long end = start + disk.chunkLength(chunk);
      long[] last = ranges.isEmpty() ? null : ranges.get(ranges.size() - 1);
      if (last != null && last[1] == start) {
        last[1] = end;
      } else {
        ranges.add(new long[] {start, end});
      }
    }
    return ranges;
  }

  /** The disk's identity at the point (the source disk's). */
  public java.util.UUID id() {
    return disk.diskId();
  }

  @Override
  public long size() {
    return disk.size();
  }

  @Override
  public boolean readOnly() {
    return false;
  }

  @Override
  public void read(long offset, ByteBuffer dst) throws IOException {
    checkRange(offset, dst.remaining());
    checkOnline();
    ensurePresent(offset, dst.remaining());
    long position = offset;
    while (dst.hasRemaining()) {
      int n = image.read(dst, position);
      if (n < 0) {
        throw new IOException(label + ": the local image ended at " + position);
      }
      position += n;
    }
  }

  @Override
  public void write(long offset, ByteBuffer src, boolean fua) throws IOException {
    checkRange(offset, src.remaining());
    checkOnline();
    prepareWrite(offset, src.remaining());
    ByteBuffer b = src.duplicate();
    long position = offset;
    while (b.hasRemaining()) {
      position += image.write(b, position);
    }
    if (fua) {
      flush();
    }
  }

  @Override
  public void writeZeroes(long offset, long length, boolean fua) throws IOException {
    checkRange(offset, length);
    checkOnline();
    prepareWrite(offset, length);
    ByteBuffer zeroes = ByteBuffer.allocate((int) Math.min(length, 1 << 20));
    long position = offset;
    long end = offset + length;
    while (position < end) {
      zeroes.clear().limit((int) Math.min(zeroes.capacity(), end - position));
      position += image.write(zeroes, position);
    }
    if (fua) {
      flush();
    }
  }

  @Override
  public void flush() throws IOException {
    image.force(false);
    // forces again only for marks of chunks fetched since: a mark is never ahead of its data
    ledger.commit(this::forceImage);
  }

  /** Drops I/O from NBD clients (ESHUTDOWN) while the recovery is discarded or committed. */
  public void setOffline() {
    online = false;
  }

  /** Serves I/O again: a commit that could not start gives the disk back. */
  void setOnline() {
    online = true;
  }

  /** Makes chunk {@code chunk} local if it is not; the background fetcher's step. */
  public void fetch(long chunk) throws IOException {
    ensureChunk(chunk);
  }

  private void prepareWrite(long offset, long length) throws IOException {
    ensurePresent(offset, length);
    if (length == 0) {
      return;
    }
    for (long c = offset / disk.chunkSize(); c <= (offset + length - 1) / disk.chunkSize(); c++) {
      ledger.markWritten(c, this::forceImage); // before the data: no restart fetches over it
    }
  }

  private void ensurePresent(long offset, long length) throws IOException {
    if (length == 0) {
      return;
    }
    for (long c = offset / disk.chunkSize(); c <= (offset + length - 1) / disk.chunkSize(); c++) {
      ensureChunk(c);
    }
  }

  private void ensureChunk(long chunk) throws IOException {
    if (ledger.present(chunk)) {
      return;
    }
    // One download per chunk at a time; a reader of another chunk never waits for this one.
    CompletableFuture<Void> mine = new CompletableFuture<>();
    CompletableFuture<Void> theirs = fetching.putIfAbsent(chunk, mine);
    if (theirs != null) {
      awaitFetch(chunk, theirs);
      return;
    }
    try {
      if (!ledger.present(chunk)) {
        fetchChunk(chunk);
      }
      mine.complete(null);
    } catch (IOException | RuntimeException e) {
      mine.completeExceptionally(e);
      throw e;
    } finally {
      fetching.remove(chunk, mine);
    }
  }

  private void awaitFetch(long chunk, CompletableFuture<Void> fetch) throws IOException {
    try {
      fetch.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException(label + ": interrupted waiting for chunk " + chunk);
    } catch (ExecutionException e) {
      throw new IOException(label + ": chunk " + chunk + " is unavailable: "
          + e.getCause().getMessage(), e.getCause());
    }
  }

  /** Reads this disk in the point's newest manifest revision. */
  @FunctionalInterface
  public interface PointReader {
    PointManifest.Disk reread() throws IOException;
  }

  /**
   * Fetches a chunk as the point's manifest describes it; if its object is gone, re-reads the
   * point once: a prune since may have folded logs into a new object for this chunk.
   */
  private void fetchChunk(long chunk) throws IOException {
    PointManifest.Disk at = current;
    try {
      fetchChunk(chunk, at);
    } catch (ChunkUnavailableException e) {
      if (!(e.getCause() instanceof ObjectMissingException)) {
        throw e;
      }
      PointManifest.Disk newer = reread(at);
      if (newer.chunkGenerations()[(int) chunk] == at.chunkGenerations()[(int) chunk]) {
        throw e;
      }
      log.info("{}: chunk {} was folded by a prune into generation {}; fetching that", label,
          chunk, newer.chunkGenerations()[(int) chunk]);
      fetchChunk(chunk, newer);
    }
  }

  private PointManifest.Disk reread(PointManifest.Disk at) throws IOException {
    PointManifest.Disk newer = point.reread();
    List<Long> logs = at.logGenerations();
    List<Long> left = newer.logGenerations();
    // a prune folds the oldest logs into chunks: the newer revision keeps a suffix of the list
    if (!newer.diskId().equals(disk.diskId()) || newer.size() != disk.size()
        || newer.chunkSize() != disk.chunkSize() || left.size() > logs.size()
        || !logs.subList(logs.size() - left.size(), logs.size()).equals(left)) {
      throw new IOException(label + ": the point's newer manifest revision does not describe"
          + " the same disk");
    }
    current = newer;
    return newer;
  }

  private void fetchChunk(long chunk, PointManifest.Disk at) throws IOException {
    long generation = at.chunkGenerations()[(int) chunk];
    boolean logged = logs.touches(chunk, at.logGenerations());
    if (generation == PointManifest.ZERO && !logged) {
      // Nothing to write: the image is sparse there and only a present chunk is ever written.
      ledger.markPresent(chunk);
      return;
    }
    int length = disk.chunkLength(chunk);
    long base = chunk * disk.chunkSize();
    String key = generation == PointManifest.ZERO ? "the point's logs"
        : names.chunk(disk.index(), chunk, generation);
    byte[] bytes;
    try {
      if (generation == PointManifest.ZERO) {
        bytes = new byte[length];
      } else {
        bytes = sealed.open(key, store.get(key, (int) sealed.sealedLength(key, length)));
        fetchedBytes.addAndGet(bytes.length);
        if (bytes.length != length) {
          throw new ObjectCorruptException(key, bytes.length + " bytes, the chunk has "
              + length);
        }
      }
      logs.apply(chunk, base, bytes, at.logGenerations());
    } catch (SealedObjectException e) {
      log.error("{}: chunk {} refused: {}: {}", label, chunk, e.getClass().getSimpleName(),
          e.getMessage());
      throw new ChunkUnavailableException(label, chunk, key, e);
    } catch (IOException e) {
      log.warn("{}: chunk {} not fetched: {}", label, chunk, e.toString());
      throw new ChunkUnavailableException(label, chunk, key, e);
    }
    ByteBuffer data = ByteBuffer.wrap(bytes);
    long position = base;
    while (data.hasRemaining()) {
      position += image.write(data, position);
    }
    if (ledger.markPresent(chunk) >= COMMIT_EVERY) {
      ledger.commit(this::forceImage);
    }
  }

  /**
   * Makes the chunks fetched since the last batch durable in the ledger now: a fetch that slows
   * or stalls (the store throttling, a gate) does not leave them only in memory until a 16th one
   * arrives.
   */
  void commitFetched() throws IOException {
    ledger.commit(this::forceImage);
  }

  private void forceImage() throws IOException {
    image.force(false);
  }

  private void checkRange(long offset, long length) {
    if (offset < 0 || length < 0 || length > disk.size() - offset) {
      throw new IllegalArgumentException(label + ": range at " + offset + " of " + length
          + " bytes is outside the disk's " + disk.size() + " bytes");
    }
  }

  private void checkOnline() throws DeviceUnavailableException {
    if (!online) {
      throw new DeviceUnavailableException(label + " is being discarded or committed");
    }
  }

  @Override
  public void close() throws IOException {
    try {
      ledger.commit(this::forceImage);
      image.close();
    } finally {
      try {
        ledger.close();
      } finally {
        logs.close();
      }
    }
  }
}
