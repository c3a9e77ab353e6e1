package io.siterecovery.agent.undo;

import io.siterecovery.agent.FaultInjection;
import io.siterecovery.agent.disk.VirtualDisk;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.UUID;
import java.util.zip.CRC32C;

/**
 * Writes the undo file of one disk for one generation: before the generation is applied, the
 * current contents of every range its log will overwrite. A range already saved in this file is
 * not saved again (its first save holds the contents before the generation, which is what a
 * rollback must restore), so the file never holds more than the disk's size.
 */
public final class UndoWriter implements Closeable {
  private static final ByteBuffer ZEROES =
      ByteBuffer.allocateDirect(UndoFormat.ZERO_BLOCK).asReadOnlyBuffer();

  private final Path path;
  private final VirtualDisk disk;
  private final FileChannel channel;
  private final CRC32C fileCrc = new CRC32C();
  private final RangeSet saved = new RangeSet();
  // Direct buffers: the JDK copies a heap buffer through a temporary direct one on every I/O.
  private final ByteBuffer buffer = ByteBuffer.allocateDirect(UndoFormat.MAX_ENTRY_LENGTH);
  private final ByteBuffer out = ByteBuffer.allocateDirect(UndoFormat.MAX_ENTRY_LENGTH);
  private long position;
  private long entries;
  private long dataBytes;
  private boolean sealed;

  private UndoWriter(Path path, VirtualDisk disk, FileChannel channel) {
    this.path = path;
    this.disk = disk;
    this.channel = channel;
  }

  /** Creates the file (it must not exist) and writes its header. */
  public static UndoWriter create(Path path, VirtualDisk disk, long generation) throws IOException {
    FileChannel channel = FileChannel.open(path, StandardOpenOption.CREATE_NEW,
        StandardOpenOption.WRITE);
    UndoWriter w = new UndoWriter(path, disk, channel);
    try {
      w.writeHeader(disk.id(), generation, disk.size());
    } catch (IOException | RuntimeException e) {
      channel.close();
      throw e;
    }
    return w;
  }

  private void writeHeader(UUID diskId, long generation, long diskSize) throws IOException {
    ByteBuffer b = UndoFormat.allocate(UndoFormat.HEADER_SIZE);
    b.put(UndoFormat.MAGIC);
    b.putInt(UndoFormat.VERSION);
    b.putInt(UndoFormat.HEADER_SIZE);
    b.putLong(diskId.getMostSignificantBits());
    b.putLong(diskId.getLeastSignificantBits());
    b.putLong(generation);
    b.putLong(diskSize);
    b.putLong(System.currentTimeMillis());
    b.putInt(0);
    b.putInt(UndoFormat.crc(b, 0, 60));
    b.flip();
    write(b);
  }

  /** Saves the disk's current contents of {@code [offset, offset + length)} unless already saved. */
  public void save(long offset, long length) throws IOException {
    // no offset + length before the check: the range comes from a log, and the sum could overflow
    if (offset < 0 || length < 0 || offset > disk.size() || length > disk.size() - offset) {
      throw new IllegalArgumentException("range " + offset + "+" + length + " outside the disk");
    }
    for (long[] gap : saved.add(offset, offset + length)) {
      long at = gap[0];
      while (at < gap[1]) {
        int n = (int) Math.min(gap[1] - at, buffer.capacity());
        disk.readAt(at, buffer.clear().limit(n));
        emitRuns(at, n);
        at += n;
      }
    }
  }

  /** Splits a chunk read into the buffer into runs of all-zero and other blocks, one entry each. */
  private void emitRuns(long offset, int length) throws IOException {
    int runStart = 0;
    boolean runZero = false;
    for (int pos = 0; pos < length; pos += UndoFormat.ZERO_BLOCK) {
      int end = Math.min(length, pos + UndoFormat.ZERO_BLOCK);
      boolean zero = buffer.slice(pos, end - pos).mismatch(ZEROES.slice(0, end - pos)) < 0;
      if (pos == 0) {
        runZero = zero;
      } else if (zero != runZero) {
        entry(runZero, offset, runStart, pos - runStart);
        runStart = pos;
        runZero = zero;
      }
    }
    entry(runZero, offset, runStart, length - runStart);
  }

  private void entry(boolean zero, long chunkOffset, int from, int length) throws IOException {
    ByteBuffer head = UndoFormat.allocate(UndoFormat.ENTRY_HEADER_SIZE);
    ByteBuffer data = zero ? null : buffer.slice(from, length);
    int dataCrc = 0;
    if (data != null) {
      CRC32C crc = new CRC32C();
      crc.update(data.duplicate());
      dataCrc = (int) crc.getValue();
    }
    head.putInt(UndoFormat.ENTRY_MAGIC);
    head.putShort(zero ? UndoFormat.TYPE_ZERO : UndoFormat.TYPE_DATA);
    head.putShort((short) 0);
    head.putLong(chunkOffset + from);
    head.putInt(length);
    head.putInt(dataCrc);
    head.putInt(UndoFormat.crc(head, 0, 24));
    head.putInt(0);
    head.flip();
    write(head);
    if (data != null) {
      write(data);
      dataBytes += length;
    }
    entries++;
    FaultInjection.reached("undo-entry");
  }

  /** Appends through a buffer: small entries (4 KiB guest writes) would cost a syscall each. */
  private void write(ByteBuffer b) throws IOException {
    fileCrc.update(b.duplicate());
    position += b.remaining();
    if (b.remaining() >= out.capacity() / 4) {
      drain(); // large data goes straight to the file rather than through another copy
      writeFully(b);
      return;
    }
    if (b.remaining() > out.remaining()) {
      drain();
    }
    out.put(b);
  }

  private void drain() throws IOException {
    out.flip();
    writeFully(out);
    out.clear();
  }

  private void writeFully(ByteBuffer b) throws IOException {
    while (b.hasRemaining()) {
      channel.write(b);
    }
  }

  /** Writes the trailer, makes the file durable and closes it. */
  public void seal() throws IOException {
    ByteBuffer t = UndoFormat.allocate(UndoFormat.TRAILER_SIZE);
    t.putInt(UndoFormat.TRAILER_MAGIC);
    t.putInt(0);
    t.putLong(entries);
    t.putLong(dataBytes);
    t.putInt((int) fileCrc.getValue());
    t.putInt(UndoFormat.crc(t, 0, 28));
    t.flip();
    position += t.remaining();
    drain();
    writeFully(t);
    channel.force(true);
    channel.close();
    sealed = true;
  }

  public Path path() {
    return path;
  }

  public long entries() {
    return entries;
  }

  public long dataBytes() {
    return dataBytes;
  }

  /** Bytes written so far, trailer included once sealed. */
  public long sizeBytes() {
    return position;
  }

  public boolean sealed() {
    return sealed;
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }
}
