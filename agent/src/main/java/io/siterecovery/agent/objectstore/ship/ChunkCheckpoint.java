package io.siterecovery.agent.objectstore.ship;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * Which chunks of a VM's initial copy (or resync) to a bucket are done, kept beside the VM so
 * that a copy interrupted (a call's budget, an agent killed) resumes without sending them again.
 * A text file: a header naming the copy (bucket VM id, chunk size, each disk's id and size, and
 * for a resync its base point and generation; another header starts over), then one line per
 * chunk, {@code <disk> <chunk> S} once its object is stored (forced to disk before the line is
 * counted), {@code <disk> <chunk> Z} for a chunk that read as zeroes, {@code <disk> <chunk> K}
 * for a resync's chunk found equal in the bucket (neither forced: losing one costs a re-read or a
 * compare, not an upload), and for a resync's chunk equal only with the bucket's logs applied,
 * {@code s} (stored, forced) or {@code z} (zero). A torn last line, from a crash while appending,
 * is cut off when the file is opened.
 */
final class ChunkCheckpoint implements Closeable {
  static final byte STORED = 1;
  static final byte ZERO = 2;
  /** A resync's chunk equal to the bucket's: its object is kept. */
  static final byte KEPT = 3;
  /**
   * A resync's chunk equal to the bucket's only with the point's logs applied: stored again (or,
   * for {@link #FOLDED_ZERO}, recorded as zero), since the resync's point names no log.
   */
  static final byte FOLDED = 4;
  static final byte FOLDED_ZERO = 5;
  private static final String CODES = "?SZKsz";
  private static final long MAX_FILE_BYTES = 256L << 20;

  private final Path file;
  private final FileChannel channel;
  private final byte[][] state;
  private long done;

  private ChunkCheckpoint(Path file, FileChannel channel, long[] chunksPerDisk) {
    this.file = file;
    this.channel = channel;
    this.state = new byte[chunksPerDisk.length][];
    for (int d = 0; d < chunksPerDisk.length; d++) {
      state[d] = new byte[Math.toIntExact(chunksPerDisk[d])];
    }
  }

  /** Opens the copy's checkpoint, or starts one when there is none or it names another copy. */
  static ChunkCheckpoint open(Path file, String header, long[] chunksPerDisk)
      throws IOException {
    Files.createDirectories(file.getParent());
    FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE,
        StandardOpenOption.READ, StandardOpenOption.WRITE);
    ChunkCheckpoint cp = new ChunkCheckpoint(file, channel, chunksPerDisk);
    try {
      cp.load(header);
    } catch (IOException | RuntimeException e) {
      channel.close();
      throw e;
    }
    return cp;
  }

  private void load(String header) throws IOException {
    long size = channel.size();
    if (size > MAX_FILE_BYTES) {
      throw new IOException(file + ": a checkpoint of " + size + " bytes");
    }
    String text = new String(Files.readAllBytes(file), StandardCharsets.US_ASCII);
    int headerEnd = text.indexOf('\n');
    if (headerEnd < 0 || !text.substring(0, headerEnd).equals(header)) {
      channel.truncate(0);
      append(header + "\n", true);
      return;
    }
    long valid = headerEnd + 1;
    int lineStart = headerEnd + 1;
    for (int end = text.indexOf('\n', lineStart); end >= 0;
        lineStart = end + 1, end = text.indexOf('\n', lineStart)) {
      String[] fields = text.substring(lineStart, end).split(" ");
      if (fields.length != 3 || fields[2].length() != 1 || CODES.indexOf(fields[2]) < 1) {
        break; // nothing after a damaged line is trusted
      }
      int disk = Integer.parseInt(fields[0]);
      int chunk = Integer.parseInt(fields[1]);
      if (disk < 0 || disk >= state.length || chunk < 0 || chunk >= state[disk].length) {
        break;
      }
      mark(disk, chunk, (byte) CODES.indexOf(fields[2]));
      valid = end + 1;
    }
    channel.truncate(valid);
  }

  private void mark(int disk, int chunk, byte value) {
    if (state[disk][chunk] == 0) {
      done++;
    }
    state[disk][chunk] = value;
  }

  byte state(int disk, int chunk) {
    return state[disk][chunk];
  }

  synchronized long done() {
    return done;
  }

  /** Records a chunk as durable; a stored chunk's line is on disk when this returns. */
  synchronized void record(int disk, int chunk, byte value) throws IOException {
    append(disk + " " + chunk + " " + CODES.charAt(value) + "\n",
        value == STORED || value == FOLDED);
    mark(disk, chunk, value);
  }

  private void append(String line, boolean force) throws IOException {
    ByteBuffer bytes = ByteBuffer.wrap(line.getBytes(StandardCharsets.US_ASCII));
    long position = channel.size();
    while (bytes.hasRemaining()) {
      position += channel.write(bytes, position);
    }
    if (force) {
      channel.force(false);
    }
  }

  synchronized void force() throws IOException {
    channel.force(false);
  }

  /** The header that names one copy: another bucket VM id, chunk size or disk set starts over. */
  static String header(String bucketVmId, int chunkSize, List<String> disks) {
    return "site-recovery initial-copy v1 " + bucketVmId + " " + chunkSize + " "
        + String.join(",", disks);
  }

  /**
   * The header that names one resync: the same, with the point it compares against (id and
   * revision), its sealed generation and a digest of why it is required; any other resync
   * starts over.
   */
  static String resyncHeader(String bucketVmId, int chunkSize, List<String> disks,
      long basePoint, int baseRevision, long generation, String reasons) {
    return "site-recovery bucket-resync v1 " + bucketVmId + " " + chunkSize + " "
        + String.join(",", disks) + " " + basePoint + "r" + baseRevision + " " + generation
        + " " + reasons;
  }

  /** How many chunks have this state. */
  synchronized long count(byte value) {
    long n = 0;
    for (byte[] disk : state) {
      for (byte b : disk) {
        n += b == value ? 1 : 0;
      }
    }
    return n;
  }

  /** The copy is committed: its checkpoint goes. */
  void delete() throws IOException {
    channel.close();
    Files.deleteIfExists(file);
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }
}
