package io.siterecovery.agent.transport;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.disk.DataExtents;
import io.siterecovery.agent.disk.DirectWriter;
import io.siterecovery.agent.disk.VirtualDisk;
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
  /** u64 offset, u32 length. */
  static final int FRAME_HEADER = 12;
  private static final byte[] ZERO_CHUNK = new byte[CHUNK];

  private RangeStream() {}

  /** A stream of frames produced one at a time by {@link #fill()} into {@link #frame}. */
  private abstract static class FrameSource extends InputStream {
    protected final ByteBuffer frame =
        ByteBuffer.allocate(FRAME_HEADER + CHUNK).order(ByteOrder.BIG_ENDIAN);

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
    public static final int MAX_FRAME = CHUNK;
    private final VirtualDisk disk;
    private final long start;
    private final long end;
    private final boolean budgeted;
    private final long deadlineNanos;
    private final int frameBytes;
    private long next;
    private long bytesRead;
    private long bytesSent;

    private final DataExtents extents;
    private boolean closed;

    /** {@code length} may run past the end of the disk, up to {@code Long.MAX_VALUE}: the rest. */
    public Sender(VirtualDisk disk, long offset, long length) {
      this(disk, offset, length, null, CHUNK);
    }

    /**
     * As above, but ends the stream early, at a frame boundary, once {@code budget} has passed
     * (null: no budget) and at least one frame went out; {@link #nextOffset()} then says where
     * it stopped. Frames are pulled at the pace of the wire, so the stream ends about one frame
     * after its budget: the caller can heartbeat on time. {@code frameBytes} (a multiple of 64
     * KiB up to {@link #CHUNK}) bounds that overshoot on a slow link.
     */
    public Sender(VirtualDisk disk, long offset, long length, java.time.Duration budget,
        int frameBytes) {
      if (frameBytes <= 0 || frameBytes > CHUNK || frameBytes % (64 << 10) != 0) {
        throw new IllegalArgumentException("frame of " + frameBytes + " bytes");
      }
      this.frameBytes = frameBytes;
      if (offset < 0 || length < 0 || offset > disk.size()) {
        throw new IllegalArgumentException("range " + offset + "+" + length + " outside disk of "
            + disk.size() + " bytes");
      }
      this.disk = disk;
      this.start = offset;
      this.next = offset;
      this.budgeted = budget != null;
      this.deadlineNanos = budgeted ? System.nanoTime() + budget.toNanos() : 0;
      this.end = offset + Math.min(length, disk.size() - offset); // offset + length may overflow
      this.extents = DataExtents.of(disk.image(), disk.size());
    }

    @Override
    protected boolean fill() throws IOException {
      while (!frame.hasRemaining()) {
        if (next >= end || budgeted && next > start && System.nanoTime() - deadlineNanos >= 0) {
          return false;
        }
        // Holes need not be read: they are zeroes, and the replica starts as one big hole.
        long data = Math.min(end, extents.nextData(next));
        if (data > next) {
          bytesRead += data - next;
          next = data;
          continue;
        }
        int len = (int) Math.min(frameBytes, end - next);
        frame.clear();
        frame.position(FRAME_HEADER).limit(FRAME_HEADER + len);
        disk.readAt(next, frame);
        bytesRead += len;
        boolean zero = java.util.Arrays.mismatch(frame.array(), FRAME_HEADER, FRAME_HEADER + len,
            ZERO_CHUNK, 0, len) < 0;
        if (zero) {
          frame.limit(0);
        } else {
          frame.putLong(0, next).putInt(8, len);
          frame.position(0).limit(FRAME_HEADER + len);
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
        frame.position(FRAME_HEADER).limit(FRAME_HEADER + len);
        disk.readAt(next, frame);
        frame.putLong(0, next).putInt(8, len);
        frame.position(0).limit(FRAME_HEADER + len);
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
    ByteBuffer header = ByteBuffer.allocate(FRAME_HEADER).order(ByteOrder.BIG_ENDIAN);
    long written = 0;
    while (true) {
      int n = in.readNBytes(header.array(), 0, FRAME_HEADER);
      if (n == 0) {
        return written;
      }
      if (n < FRAME_HEADER) {
        throw corrupt("the stream ended inside a frame header, after " + written + " data bytes");
      }
      long offset = header.getLong(0);
      int length = header.getInt(8);
      // no offset + length: a crafted offset near Long.MAX_VALUE would overflow past the check
      if (length < 0 || length > CHUNK || offset < 0 || offset > disk.size()
          || length > disk.size() - offset) {
        throw corrupt("frame out of range: offset " + offset + " length " + length
            + " on a disk of " + disk.size() + " bytes");
      }
      byte[] buffer = behind.buffer();
      if (in.readNBytes(buffer, 0, length) < length) {
        throw corrupt("the stream ended inside the data of the frame at offset " + offset);
      }
      behind.write(offset, buffer, length);
      written += length;
    }
  }

  /** Recoverable: the source still has the data and sends the range again. */
  private static AgentException corrupt(String problem) {
    return new AgentException(ErrorCode.TRANSFER_CORRUPT, "received ranges: " + problem);
  }
}
