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
 * where it stopped and never fetches over what the VM wrote. A chunk is marked present only
 * after its data is durable in the image; a chunk is marked written (durably) before the VM's
 * first write to it reaches the image.
 */
final class ChunkLedger implements Closeable {
  static final byte PRESENT = 1;
  static final byte WRITTEN = 2;

  private final FileChannel file;
  private final byte[] states;

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

  /** {@code durable}: forced now; otherwise at the next {@link #force} (a zero chunk is redone for free). */
  synchronized void markPresent(long chunk, boolean durable) throws IOException {
    set(chunk, PRESENT, durable);
  }

  synchronized void markWritten(long chunk) throws IOException {
    if (!written(chunk)) {
      set(chunk, WRITTEN, true);
    }
  }

  private void set(long chunk, byte flag, boolean durable) throws IOException {
    states[(int) chunk] |= flag;
    file.write(ByteBuffer.wrap(states, (int) chunk, 1), chunk);
    if (durable) {
      file.force(false);
    }
  }

  synchronized void force() throws IOException {
    file.force(false);
  }

  @Override
  public synchronized void close() throws IOException {
    file.force(false);
    file.close();
  }
}
