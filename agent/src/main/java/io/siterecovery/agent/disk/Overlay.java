package io.siterecovery.agent.disk;

import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.nbd.BlockDevice;
import io.siterecovery.agent.nbd.DeviceUnavailableException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.zip.CRC32C;

/**
 * One disk of a test VM: a copy-on-write layer over a replica disk, frozen at a recovery point
 * while the replica underneath moves on. A sparse scratch file ({@code <disk>.scratch}, the disk's
 * size) holds every range the layer covers, and a map ({@code <disk>.map}) says which: the
 * point's own contents of ranges the replica has since overwritten, and the test VM's writes.
 * Uncovered ranges read from the replica, whose contents there are still the point's.
 *
 * <p>The map is append-only, 24 bytes a range: offset and length (little-endian longs), CRC32C of
 * those 16 bytes, 4 reserved bytes. A torn or damaged tail is dropped on open. Ranges reach the
 * map only after the scratch bytes they describe are forced, so a crash never makes a range read
 * from scratch that was not written there; a test write lost that way reads as it did before it.
 */
public final class Overlay implements BlockDevice, AutoCloseable {
  private static final int MAP_RECORD = 24;
  private static final int COPY_CHUNK = 1 << 20;
  private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(COPY_CHUNK).asReadOnlyBuffer();

  private final VirtualDisk base;
  private final FileChannel scratch;
  private final FileChannel map;
  private final CoveredRanges covered = new CoveredRanges();
  /** Ranges covered in memory whose map records wait for the next force. */
  private final List<long[]> unrecorded = new ArrayList<>();
  private final ReentrantReadWriteLock lock = new ReentrantReadWriteLock();
  private volatile boolean online = true;
  /** After {@link #mergeIntoBase}: every read and write goes to the base disk itself. */
  private volatile boolean merged;

  private Overlay(VirtualDisk base, FileChannel scratch, FileChannel map) {
    this.base = base;
    this.scratch = scratch;
    this.map = map;
  }

  public static Path scratchFile(Path dir, String disk) {
    return dir.resolve(disk + ".scratch");
  }

  public static Path mapFile(Path dir, String disk) {
    return dir.resolve(disk + ".map");
  }

  /** Opens (or creates empty) the layer of {@code base} kept in {@code dir}. */
  public static Overlay open(Path dir, VirtualDisk base) throws IOException {
    Path scratchPath = scratchFile(dir, base.name());
    FileChannel scratch = FileChannel.open(scratchPath, StandardOpenOption.CREATE,
        StandardOpenOption.READ, StandardOpenOption.WRITE);
    FileChannel map = FileChannel.open(mapFile(dir, base.name()), StandardOpenOption.CREATE,
        StandardOpenOption.READ, StandardOpenOption.WRITE);
    Overlay overlay = new Overlay(base, scratch, map);
    try {
      if (scratch.size() < base.size()) {
        try (var f = new java.io.RandomAccessFile(scratchPath.toFile(), "rw")) {
          f.setLength(base.size()); // sparse: only covered ranges take space
        }
      }
      overlay.load();
    } catch (IOException | RuntimeException e) {
      overlay.close();
      throw e;
    }
    return overlay;
  }

  private void load() throws IOException {
    long size = map.size();
    ByteBuffer record = ByteBuffer.allocate(MAP_RECORD).order(ByteOrder.LITTLE_ENDIAN);
    long pos = 0;
    while (pos + MAP_RECORD <= size) {
      record.clear();
      while (record.hasRemaining() && map.read(record, pos + record.position()) > 0) {
        // read the whole record
      }
      long offset = record.getLong(0);
      long length = record.getLong(8);
      if (record.getInt(16) != crc(record) || offset < 0 || length <= 0
          || length > base.size() - offset) {
        break;
      }
      covered.add(offset, offset + length);
      pos += MAP_RECORD;
    }
    if (pos != size) {
      map.truncate(pos); // a torn or damaged tail: those ranges still read from the replica
    }
    map.position(pos);
  }

  /**
   * Writes {@code ranges} ({start, end} pairs) to {@code file} in the map's format and forces it:
   * how a failed-over VM keeps which ranges its disk changed since the failover point.
   */
  public static void writeRanges(Path file, List<long[]> ranges) throws IOException {
    ByteBuffer records = ByteBuffer.allocate(ranges.size() * MAP_RECORD)
        .order(ByteOrder.LITTLE_ENDIAN);
    for (long[] r : ranges) {
      putRecord(records, r[0], r[1] - r[0]);
    }
    records.flip();
    try (FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
      while (records.hasRemaining()) {
        ch.write(records);
      }
      ch.force(true);
    }
  }

  /** Reads a file written by {@link #writeRanges}: {offset, length} pairs, merged and in order. */
  public static List<long[]> readRanges(Path file, long diskSize) throws IOException {
    CoveredRanges ranges = new CoveredRanges();
    ByteBuffer all = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
    for (int pos = 0; pos + MAP_RECORD <= all.limit(); pos += MAP_RECORD) {
      ByteBuffer record = all.slice(pos, MAP_RECORD).order(ByteOrder.LITTLE_ENDIAN);
      long offset = record.getLong(0);
      long length = record.getLong(8);
      if (record.getInt(16) != crc(record) || offset < 0 || length <= 0
          || length > diskSize - offset) {
        throw new IOException(file + ": damaged range record at byte " + pos);
      }
      ranges.add(offset, offset + length);
    }
    return ranges.ranges().stream().map(r -> new long[] {r[0], r[1] - r[0]}).toList();
  }

  private static void putRecord(ByteBuffer records, long offset, long length) {
    ByteBuffer one = records.slice(records.position(), MAP_RECORD).order(ByteOrder.LITTLE_ENDIAN);
    one.putLong(0, offset).putLong(8, length);
    one.putInt(16, crc(one)).putInt(20, 0);
    records.position(records.position() + MAP_RECORD);
  }

  private static int crc(ByteBuffer record) {
    CRC32C crc = new CRC32C();
    crc.update(record.duplicate().position(0).limit(16));
    return (int) crc.getValue();
  }

  @Override
  public long size() {
    return base.size();
  }

  @Override
  public boolean readOnly() {
    return false;
  }

  /** Bytes held apart from the replica. */
  public long scratchBytes() {
    lock.readLock().lock();
    try {
      return covered.bytes();
    } finally {
      lock.readLock().unlock();
    }
  }

  /** Once offline (the test is being cleaned up), the layer refuses every read and write. */
  public void setOffline() {
    online = false;
  }

  @Override
  public void read(long offset, ByteBuffer dst) throws IOException {
    if (merged) {
      base.read(offset, dst);
      return;
    }
    checkRange(offset, dst.remaining());
    lock.readLock().lock();
    try {
      checkOnline();
      long end = offset + dst.remaining();
      long at = offset;
      for (long[] gap : covered.gaps(offset, end)) {
        if (gap[0] > at) {
          readInto(scratch, at, dst, gap[0] - at);
        }
        readBase(gap[0], dst, gap[1] - gap[0]);
        at = gap[1];
      }
      if (at < end) {
        readInto(scratch, at, dst, end - at);
      }
    } finally {
      lock.readLock().unlock();
    }
  }

  private void readBase(long offset, ByteBuffer dst, long length) throws IOException {
    ByteBuffer part = dst.slice(dst.position(), (int) length);
    base.readAt(offset, part);
    dst.position(dst.position() + (int) length);
  }

  private static void readInto(FileChannel ch, long offset, ByteBuffer dst, long length)
      throws IOException {
    ByteBuffer part = dst.slice(dst.position(), (int) length);
    long pos = offset;
    while (part.hasRemaining()) {
      int n = ch.read(part, pos);
      if (n < 0) {
        while (part.hasRemaining()) {
          part.put((byte) 0);
        }
        break;
      }
      pos += n;
    }
    dst.position(dst.position() + (int) length);
  }

  @Override
  public void write(long offset, ByteBuffer src, boolean fua) throws IOException {
    checkRange(offset, src.remaining());
    lock.writeLock().lock();
    try {
      if (merged) {
        base.write(offset, src, fua);
        return;
      }
      checkOnline();
      long length = src.remaining();
      writeScratch(offset, src.duplicate());
      cover(offset, offset + length);
      if (fua) {
        forceLocked();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  @Override
  public void writeZeroes(long offset, long length, boolean fua) throws IOException {
    checkRange(offset, length);
    lock.writeLock().lock();
    try {
      if (merged) {
        base.writeZeroes(offset, length, fua);
        return;
      }
      checkOnline();
      for (long done = 0; done < length; ) {
        int n = (int) Math.min(COPY_CHUNK, length - done);
        writeScratch(offset + done, ZEROES.duplicate().limit(n));
        done += n;
      }
      cover(offset, offset + length);
      if (fua) {
        forceLocked();
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  @Override
  public void flush() throws IOException {
    lock.writeLock().lock();
    try {
      if (merged) {
        base.flush();
        return;
      }
      forceLocked();
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Before the replica's {@code [offset, offset + length)} is overwritten: copies whatever part of
   * it the layer does not cover yet into scratch, so the test VM keeps reading its point there.
   * The caller forces with {@link #force} before the replica is written.
   */
  public void preserveFromReplica(long offset, long length) throws IOException {
    lock.writeLock().lock();
    try {
      ByteBuffer buffer = ByteBuffer.allocateDirect((int) Math.min(COPY_CHUNK, length));
      for (long[] gap : covered.gaps(offset, offset + length)) {
        for (long at = gap[0]; at < gap[1]; ) {
          int n = (int) Math.min(buffer.capacity(), gap[1] - at);
          buffer.clear().limit(n);
          base.readAt(at, buffer);
          buffer.flip();
          writeScratch(at, buffer);
          at += n;
        }
        cover(gap[0], gap[1]);
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  /**
   * Fills what the layer does not cover yet of {@code [offset, offset + length)} with
   * {@code contents} (null: zeroes): the point's contents of a range, taken from undo data when
   * the test VM is made at a point older than the replica's.
   */
  public void preserveContents(long offset, int length, ByteBuffer contents) throws IOException {
    lock.writeLock().lock();
    try {
      for (long[] gap : covered.gaps(offset, offset + length)) {
        int from = (int) (gap[0] - offset);
        int n = (int) (gap[1] - gap[0]);
        if (contents == null) {
          for (int done = 0; done < n; ) {
            int chunk = Math.min(COPY_CHUNK, n - done);
            writeScratch(gap[0] + done, ZEROES.duplicate().limit(chunk));
            done += chunk;
          }
        } else {
          writeScratch(gap[0], contents.duplicate().position(from).limit(from + n));
        }
        cover(gap[0], gap[1]);
      }
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** Makes scratch durable, then the map records of what it covers. */
  public void force() throws IOException {
    lock.writeLock().lock();
    try {
      if (merged) {
        return;
      }
      forceLocked();
    } finally {
      lock.writeLock().unlock();
    }
  }

  /** The ranges the layer covers, in order. */
  public List<long[]> ranges() {
    lock.readLock().lock();
    try {
      return covered.ranges();
    } finally {
      lock.readLock().unlock();
    }
  }

  /**
   * Makes the base disk what the layer shows: every covered range is copied from scratch to the
   * base and the base forced, with the layer's reads and writes held meanwhile; from then on the
   * layer passes every read and write to the base (through its change tracker, if it has one).
   * Repeating a merge interrupted by a crash gives the same base. Returns the ranges copied.
   */
  public List<long[]> mergeIntoBase() throws IOException {
    lock.writeLock().lock();
    try {
      if (merged) {
        return List.of();
      }
      List<long[]> ranges = ranges();
      ByteBuffer buffer = ByteBuffer.allocateDirect(COPY_CHUNK);
      for (long[] r : ranges) {
        for (long at = r[0]; at < r[1]; ) {
          int n = (int) Math.min(COPY_CHUNK, r[1] - at);
          buffer.clear().limit(n);
          readInto(scratch, at, buffer, n);
          buffer.flip();
          base.writeAt(at, buffer);
          at += n;
        }
      }
      base.forceImage();
      merged = true;
      return ranges;
    } finally {
      lock.writeLock().unlock();
    }
  }

  private void forceLocked() throws IOException {
    scratch.force(false);
    if (unrecorded.isEmpty()) {
      return;
    }
    ByteBuffer records = ByteBuffer.allocate(unrecorded.size() * MAP_RECORD)
        .order(ByteOrder.LITTLE_ENDIAN);
    for (long[] r : unrecorded) {
      putRecord(records, r[0], r[1] - r[0]);
    }
    records.flip();
    while (records.hasRemaining()) {
      map.write(records);
    }
    map.force(false);
    unrecorded.clear();
  }

  private void cover(long start, long end) {
    covered.add(start, end);
    unrecorded.add(new long[] {start, end});
  }

  private void writeScratch(long offset, ByteBuffer src) throws IOException {
    long pos = offset;
    while (src.hasRemaining()) {
      pos += scratch.write(src, pos);
    }
  }

  private void checkRange(long offset, long length) {
    if (offset < 0 || length < 0 || length > base.size() - offset) {
      throw new IllegalArgumentException(base.name() + ": range at "
          + Long.toUnsignedString(offset) + " of " + length + " bytes is outside the disk's "
          + base.size() + " bytes");
    }
  }

  private void checkOnline() throws DeviceUnavailableException {
    if (!online) {
      throw new DeviceUnavailableException(base.name() + " of the test VM is being cleaned up");
    }
  }

  @Override
  public void close() throws IOException {
    try {
      scratch.close();
    } finally {
      map.close();
    }
  }
}
