package io.siterecovery.agent.disk;

import io.siterecovery.agent.hrl.ChangeTracker;
import io.siterecovery.agent.nbd.BlockDevice;
import io.siterecovery.agent.nbd.DeviceUnavailableException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.UUID;
import java.util.concurrent.locks.ReentrantLock;

/**
 * A raw disk image. When a tracker is attached, every write is recorded in the active .hrl before
 * it reaches the image, under one lock, so the log order is the order of the image's writes.
 */
public final class VirtualDisk implements BlockDevice, AutoCloseable {
  private static final ByteBuffer ZEROES = ByteBuffer.allocateDirect(1 << 20).asReadOnlyBuffer();

  private final String name;
  private final UUID id;
  private final Path image;
  private final long size;
  private final FileChannel channel;
  private final ReentrantLock writeLock = new ReentrantLock();
  private volatile ChangeTracker tracker;
  private volatile boolean online = true;

  public VirtualDisk(String name, UUID id, Path image, long size) throws IOException {
    this.name = name;
    this.id = id;
    this.image = image;
    this.size = size;
    this.channel = FileChannel.open(image, StandardOpenOption.READ, StandardOpenOption.WRITE);
  }

  public String name() {
    return name;
  }

  public UUID id() {
    return id;
  }

  public Path image() {
    return image;
  }

  @Override
  public long size() {
    return size;
  }

  @Override
  public boolean readOnly() {
    return false;
  }

  public ChangeTracker tracker() {
    return tracker;
  }

  /** Attaches or detaches the change tracker between two writes. */
  public void setTracker(ChangeTracker tracker) {
    writeLock.lock();
    try {
      this.tracker = tracker;
    } finally {
      writeLock.unlock();
    }
  }

  /** Runs an action with writes held off, e.g. a log swap that must fall between two writes. */
  public <T> T withWritesHeld(IoSupplier<T> action) throws IOException {
    writeLock.lock();
    try {
      return action.get();
    } finally {
      writeLock.unlock();
    }
  }

  /** Power state as seen by I/O: offline disks refuse everything until brought online. */
  public void setOnline(boolean online) throws IOException {
    writeLock.lock();
    try {
      if (!online) {
        flushLocked();
      }
      this.online = online;
    } finally {
      writeLock.unlock();
    }
  }

  @Override
  public void read(long offset, ByteBuffer dst) throws IOException {
    checkRange(offset, dst.remaining());
    if (!online) {
      throw new DeviceUnavailableException(name + " is offline");
    }
    readAt(offset, dst);
  }

  /** Reads regardless of power state; used by replication, which copies powered-off disks too. */
  public void readAt(long offset, ByteBuffer dst) throws IOException {
    long pos = offset;
    while (dst.hasRemaining()) {
      int n = channel.read(dst, pos);
      if (n < 0) {
        while (dst.hasRemaining()) {
          dst.put((byte) 0);
        }
        return;
      }
      pos += n;
    }
  }

  @Override
  public void write(long offset, ByteBuffer src, boolean fua) throws IOException {
    checkRange(offset, src.remaining());
    writeLock.lock();
    try {
      checkOnline();
      ChangeTracker t = tracker;
      if (t != null) {
        t.recordWrite(offset, src);
      }
      writeAt(offset, src);
      if (fua) {
        flushLocked();
      }
    } finally {
      writeLock.unlock();
    }
  }

  @Override
  public void writeZeroes(long offset, long length, boolean fua) throws IOException {
    checkRange(offset, length);
    writeLock.lock();
    try {
      checkOnline();
      ChangeTracker t = tracker;
      if (t != null) {
        t.recordZero(offset, length);
      }
      zeroAt(offset, length);
      if (fua) {
        flushLocked();
      }
    } finally {
      writeLock.unlock();
    }
  }

  @Override
  public void flush() throws IOException {
    writeLock.lock();
    try {
      flushLocked();
    } finally {
      writeLock.unlock();
    }
  }

  private void flushLocked() throws IOException {
    ChangeTracker t = tracker;
    if (t != null) {
      t.force();
    }
    channel.force(false);
  }

  /**
   * Refuses a range that is not inside the disk before anything is recorded: the change tracker
   * logs a write before the image gets it, so a write the image then refuses would stay in the
   * log and fail every later replication cycle. Overflow-safe for any offset and length.
   */
  private void checkRange(long offset, long length) {
    if (offset < 0 || length < 0 || length > size - offset) {
      throw new IllegalArgumentException(name + ": range at " + Long.toUnsignedString(offset)
          + " of " + length + " bytes is outside the disk's " + size + " bytes");
    }
  }

  private void checkOnline() throws DeviceUnavailableException {
    if (!online) {
      throw new DeviceUnavailableException(name + " is offline");
    }
  }

  /** Raw write used by replication on the replica side; bypasses tracking and power state. */
  public void writeAt(long offset, ByteBuffer src) throws IOException {
    ByteBuffer b = src.duplicate();
    long pos = offset;
    while (b.hasRemaining()) {
      pos += channel.write(b, pos);
    }
  }

  public void zeroAt(long offset, long length) throws IOException {
    long done = 0;
    while (done < length) {
      int chunk = (int) Math.min(length - done, ZEROES.capacity());
      writeAt(offset + done, ZEROES.duplicate().limit(chunk));
      done += chunk;
    }
  }

  /** Makes the image durable without touching the tracker. */
  public void forceImage() throws IOException {
    channel.force(false);
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }

  @FunctionalInterface
  public interface IoSupplier<T> {
    T get() throws IOException;
  }
}
