package io.siterecovery.agent.objectstore.recover;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Which chunks of a disk being recovered are local, and which the VM has written since: one
 * byte per chunk in a file beside the image, so a restarted agent resumes the background fetch
 * where it stopped and never fetches over what the VM wrote. A fetched chunk is present at once
 * in memory, and reaches the file in a batch, only after the image has been forced
 * ({@link #commit}): a present mark on disk always means durable data, and a mark lost in a
 * crash only costs a second download. A chunk is marked written (durably, after a commit)
 * before the VM's first write to it reaches the image.
 */
final class ChunkLedger implements Closeable {
  static final byte PRESENT = 1;
  static final byte WRITTEN = 2;

  private final FileChannel file;
  private final byte[] states;
  private final java.util.List<Long> uncommitted = new java.util.ArrayList<>();

  ChunkLedger(Path path, long chunks) throws IOException {
    if (chunks > Integer.MAX_VALUE) {
      throw new IllegalArgumentException("too many chunks: " + chunks);
    }
    this.file = FileChannel.open(path, StandardOpenOption.CREATE, StandardOpenOption.READ,
        StandardOpenOption.WRITE);
    this.states = new byte[(int) chunks];
    if (file.size() > chunks) {
      throw new IOException(path + " describes " + file.size() + " chunks, the disk has "
          + chunks);
    }
    ByteBuffer in = ByteBuffer.wrap(states);
    while (in.hasRemaining() && file.read(in, in.position()) > 0) {
      // read what a previous run recorded; the rest stays absent
    }
  }

  synchronized boolean present(long chunk) {
    return (states[(int) chunk] & PRESENT) != 0;
  }

  synchronized boolean written(long chunk) {
    return (states[(int) chunk] & WRITTEN) != 0;
  }

  synchronized long presentCount() {
    long n = 0;
    for (byte s : states) {
      n += s & PRESENT;
    }
    return n;
  }

  /** Chunks the VM has written since the recovery, in order: what failback must send back. */
  synchronized java.util.List<Long> writtenChunks() {
    java.util.List<Long> chunks = new java.util.ArrayList<>();
    for (int i = 0; i < states.length; i++) {
      if ((states[i] & WRITTEN) != 0) {
        chunks.add((long) i);
      }
    }
    return chunks;
  }

  /** Present now; on disk at the next {@link #commit}. Returns how many wait for one. */
  synchronized int markPresent(long chunk) {
    states[(int) chunk] |= PRESENT;
    uncommitted.add(chunk);
    return uncommitted.size();
  }

  /** Written, durably, with every present mark before it; {@code forceImage} runs first. */
  synchronized void markWritten(long chunk, ImageForce forceImage) throws IOException {
    if (!written(chunk)) {
      states[(int) chunk] |= WRITTEN;
      uncommitted.add(chunk);
      commit(forceImage);
    }
  }

  interface ImageForce {
    void force() throws IOException;
  }

  /** Forces the image, then writes and forces the marks made since the last commit. */
  synchronized void commit(ImageForce forceImage) throws IOException {
    if (uncommitted.isEmpty()) {
      return;
    }
    forceImage.force();
    for (long chunk : uncommitted) {
      file.write(ByteBuffer.wrap(states, (int) chunk, 1), chunk);
    }
    file.force(false);
    uncommitted.clear();
  }

  /** Closes the file; marks not committed are dropped (they are fetched again). */
  @Override
  public synchronized void close() throws IOException {
    file.close();
  }
}
