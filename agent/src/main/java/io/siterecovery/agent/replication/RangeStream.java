package io.siterecovery.agent.replication;

import io.siterecovery.agent.disk.DataExtents;
import io.siterecovery.agent.disk.DirectWriter;
import io.siterecovery.agent.disk.VirtualDisk;
import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * The initial-copy wire format: frames of (u64 offset, u32 length, data), big-endian, until the end
 * of the stream. All-zero chunks are skipped by the sender: the replica starts sparse.
 */
public final class RangeStream {
  static final int CHUNK = 1 << 20;
  private static final byte[] ZERO_CHUNK = new byte[CHUNK];

  private RangeStream() {}

  /** A stream of frames produced one at a time by {@link #fill()} into {@link #frame}. */
  private abstract static class FrameSource extends InputStream {
    protected final ByteBuffer frame = ByteBuffer.allocate(12 + CHUNK).order(ByteOrder.BIG_ENDIAN);

    FrameSource() {
      frame.limit(0);
    }

    /** Makes the next bytes available in {@code frame}; false at the end of the stream. */
    protected abstract boolean fill() throws IOException;

    @Override
    public int read() throws IOException {
      return fill() ? frame.get() & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (!fill()) {
        return -1;
      }
      int n = Math.min(len, frame.remaining());
      frame.get(b, off, n);
      return n;
    }
  }

  /** Streams a range of a disk as frames, counting what it reads and what it sends. */
  public static final class Sender extends FrameSource {
    private final VirtualDisk disk;
    private final long end;
    private long next;
    private long bytesRead;
    private long bytesSent;

    private final DataExtents extents;
    private boolean closed;

    public Sender(VirtualDisk disk, long offset, long length) {
      this.disk = disk;
      this.next = offset;
      this.end = Math.min(disk.size(), offset + length);
      this.extents = DataExtents.of(disk.image(), disk.size());
    }

    @Override
    protected boolean fill() throws IOException {
      while (!frame.hasRemaining()) {
        if (next >= end) {
          return false;
        }
        // Holes need not be read: they are zeroes, and the replica starts as one big hole.
        long data = Math.min(end, extents.nextData(next));
        if (data > next) {
          bytesRead += data - next;
          next = data;
          continue;
        }
        int len = (int) Math.min(CHUNK, end - next);
        frame.clear();
        frame.position(12).limit(12 + len);
        disk.readAt(next, frame);
        bytesRead += len;
        boolean zero = java.util.Arrays.mismatch(frame.array(), 12, 12 + len, ZERO_CHUNK, 0, len) < 0;
        if (zero) {
          frame.limit(0);
        } else {
          frame.putLong(0, next).putInt(8, len);
          frame.position(0).limit(12 + len);
          bytesSent += len;
        }
        next += len;
      }
      return true;
    }

    @Override
    public void close() {
      if (!closed) {
        closed = true;
        extents.close();
      }
    }

    public long nextOffset() {
      return next;
    }

    public long bytesRead() {
      return bytesRead;
    }

    public long bytesSent() {
      return bytesSent;
    }
  }

  /**
   * Streams chosen extents of a disk as frames (at most {@link #CHUNK} bytes each), zero data
   * included: a resync sends blocks because they differ, and a block of zeroes can differ too.
   * Each extent is read when its turn comes, so it carries the disk's latest data.
   */
  public static final class ExtentSender extends FrameSource {
    private final VirtualDisk disk;
    private final java.util.Iterator<long[]> extents;
    private long next;
    private long end;
    private long bytesSent;

    /** {@code extents}: {offset, length} pairs in any order, each inside the disk. */
    public ExtentSender(VirtualDisk disk, java.util.List<long[]> extents) {
      this.disk = disk;
      this.extents = extents.iterator();
    }

    @Override
    protected boolean fill() throws IOException {
      while (!frame.hasRemaining()) {
        if (next >= end) {
          if (!extents.hasNext()) {
            return false;
          }
          long[] e = extents.next();
          next = e[0];
          end = Math.min(disk.size(), e[0] + e[1]);
          continue;
        }
        int len = (int) Math.min(CHUNK, end - next);
        frame.clear();
        frame.position(12).limit(12 + len);
        disk.readAt(next, frame);
        frame.putLong(0, next).putInt(8, len);
        frame.position(0).limit(12 + len);
        bytesSent += len;
        next += len;
      }
      return true;
    }

    /** Data bytes framed so far (frame headers not counted). */
    public long bytesSent() {
      return bytesSent;
    }
  }

  /** Frames read from the network ahead of the disk: one being written, two being read. */
  private static final int BUFFERS = 3;

  /**
   * Writes received frames into the replica disk, bypassing the page cache where it can (see
   * {@link DirectWriter}) and on a thread of its own (see {@link WriteBehind}); returns the bytes
   * written once all are written. The caller's fsync of the image covers them: fsync is per file,
   * not per descriptor.
   */
  public static long receive(InputStream in, VirtualDisk disk) throws IOException {
    try (DirectWriter writer = DirectWriter.open(disk, CHUNK);
        WriteBehind behind = new WriteBehind(writer, CHUNK, BUFFERS)) {
      return receive(in, disk, behind);
    }
  }

  private static long receive(InputStream in, VirtualDisk disk, WriteBehind behind)
      throws IOException {
    DataInputStream data = new DataInputStream(in);
    long written = 0;
    while (true) {
      long offset;
      try {
        offset = data.readLong();
      } catch (EOFException end) {
        return written;
      }
      int length = data.readInt();
      if (length < 0 || length > CHUNK || offset < 0 || offset + length > disk.size()) {
        throw new IOException("frame out of range: offset " + offset + " length " + length);
      }
      byte[] buffer = behind.buffer();
      data.readFully(buffer, 0, length);
      behind.write(offset, buffer, length);
      written += length;
    }
  }
}
