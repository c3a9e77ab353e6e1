package io.siterecovery.agent.transport;

import io.siterecovery.agent.disk.DirectWriter;
import java.io.IOException;
import java.io.InterruptedIOException;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * Writes received frames on a thread of its own, so that the next frame comes off the network
 * while the previous one goes to disk: an O_DIRECT write waits for the device, and profiling
 * showed the receiving thread spending most of its time in those waits. Frames are written in the
 * order they were handed over. {@link #close} waits for every write handed over, so nothing is
 * written after the receive ends, and reports the first write that failed.
 */
final class WriteBehind implements AutoCloseable {
  private record Frame(long offset, byte[] data, int length) {}

  private static final Frame END = new Frame(-1, null, 0);

  private final DirectWriter writer;
  private final BlockingQueue<byte[]> free;
  private final BlockingQueue<Frame> pending;
  private final Thread thread;
  private volatile IOException failure;
  private boolean closed;

  /** {@code buffers} buffers of {@code bufferSize} bytes: frames read ahead of the disk. */
  WriteBehind(DirectWriter writer, int bufferSize, int buffers) {
    this.writer = writer;
    this.free = new ArrayBlockingQueue<>(buffers);
    this.pending = new ArrayBlockingQueue<>(buffers + 1); // room for END behind every buffer
    for (int i = 0; i < buffers; i++) {
      free.add(new byte[bufferSize]);
    }
    this.thread = new Thread(this::run, "range-writer");
    thread.setDaemon(true);
    thread.start();
  }

  /** A buffer to read the next frame into; fails early once a write has failed. */
  byte[] buffer() throws IOException {
    throwIfFailed();
    try {
      return free.take();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while receiving ranges");
    }
  }

  /** Hands a buffer from {@link #buffer} over to be written at {@code offset}. */
  void write(long offset, byte[] data, int length) {
    pending.add(new Frame(offset, data, length));
  }

  private void run() {
    while (true) {
      Frame f;
      try {
        f = pending.take();
      } catch (InterruptedException e) {
        failure = new InterruptedIOException("range writer interrupted");
        return;
      }
      if (f == END) {
        return;
      }
      // After a failure the frames are still taken, unwritten, so the reader never waits for a
      // buffer that will not come back.
      if (failure == null) {
        try {
          writer.write(f.offset(), f.data(), f.length());
        } catch (IOException | RuntimeException e) {
          failure = e instanceof IOException io ? io : new IOException(e);
        }
      }
      free.add(f.data());
    }
  }

  private void throwIfFailed() throws IOException {
    IOException e = failure;
    if (e != null) {
      throw new IOException("writing a received range failed: " + e.getMessage(), e);
    }
  }

  @Override
  public void close() throws IOException {
    if (closed) {
      return;
    }
    closed = true;
    pending.add(END);
    boolean interrupted = false;
    while (thread.isAlive()) {
      try {
        thread.join();
      } catch (InterruptedException e) {
        interrupted = true; // the writes under way must end before the caller goes on
      }
    }
    if (interrupted) {
      Thread.currentThread().interrupt();
    }
    throwIfFailed();
  }
}
