package io.siterecovery.agent.objectstore.recover;

import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.objectstore.ObjectMismatchException;
import io.siterecovery.agent.objectstore.ObjectNames;
import io.siterecovery.agent.objectstore.ObjectStore;
import io.siterecovery.agent.objectstore.SealedLogs;
import io.siterecovery.agent.objectstore.PointManifest;
import io.siterecovery.agent.objectstore.SealedObjects;
import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * A point's logs for one disk, indexed by the chunks they touch, so a chunk fetched on demand
 * gets exactly the records that change it, in log order. Every log object is downloaded,
 * authenticated and verified as a sealed .hrl of this disk and generation when the index is
 * built; the records' data is kept in a local file ({@code data}), the index in memory (one
 * entry per record and chunk it touches: logs are small next to the disk). The source's resync
 * towards a bucket rebuilds the chunks it compares the same way.
 */
public final class LogIndex implements Closeable {
  /**
   * A record's part inside one chunk: its log's generation, the disk range, and where its data
   * is (-1: zeroes).
   */
  record Piece(long generation, long offset, int length, long dataPosition) {}

  private final Map<Long, List<Piece>> byChunk;
  private final FileChannel data;

  private LogIndex(Map<Long, List<Piece>> byChunk, FileChannel data) {
    this.byChunk = byChunk;
    this.data = data;
  }

  public static LogIndex build(ObjectStore store, SealedObjects sealed, ObjectNames names,
      PointManifest.Disk disk, Path dataFile, Path scratch) throws IOException {
    Map<Long, List<Piece>> byChunk = new HashMap<>();
    FileChannel data = FileChannel.open(dataFile, StandardOpenOption.CREATE,
        StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.READ, StandardOpenOption.WRITE);
    try {
      for (long generation : disk.logGenerations()) {
        String key = names.log(disk.index(), generation);
        SealedLogs.read(store, sealed, names, disk, generation, scratch, plain ->
          HrlReader.visitVerifying(plain, record -> {
            long end = record.offset() + record.length();
            if (record.length() <= 0 || record.offset() < 0 || end > disk.size()) {
              if (record.length() == 0) {
                return;
              }
              throw new ObjectMismatchException(key, "a record outside the disk at "
                  + record.offset());
            }
            long position = -1;
            if (!record.isZero()) {
              position = data.size();
              ByteBuffer bytes = record.data().duplicate();
              long at = position;
              while (bytes.hasRemaining()) {
                at += data.write(bytes, at);
              }
            }
            for (long chunk = record.offset() / disk.chunkSize();
                chunk <= (end - 1) / disk.chunkSize(); chunk++) {
              long from = Math.max(record.offset(), chunk * disk.chunkSize());
              long to = Math.min(end, (chunk + 1) * disk.chunkSize());
              byChunk.computeIfAbsent(chunk, c -> new ArrayList<>()).add(new Piece(generation, from,
                  (int) (to - from), position < 0 ? -1 : position + (from - record.offset())));
            }
          }));
      }
    } catch (IOException | RuntimeException e) {
      data.close();
      throw e;
    }
    return new LogIndex(byChunk, data);
  }

  /** Whether a record of one of the logs {@code generations} touches {@code chunk}. */
  public boolean touches(long chunk, List<Long> generations) {
    return byChunk.getOrDefault(chunk, List.of()).stream()
        .anyMatch(p -> generations.contains(p.generation()));
  }

  /**
   * Applies the records of the logs {@code generations} that touch {@code chunk} to its bytes,
   * at disk offset {@code base}. A prune may have folded the first logs into the chunk objects
   * since the index was built: those are left out then.
   */
  public void apply(long chunk, long base, byte[] bytes, List<Long> generations)
      throws IOException {
    for (Piece p : byChunk.getOrDefault(chunk, List.of())) {
      if (!generations.contains(p.generation())) {
        continue;
      }
      int at = (int) (p.offset() - base);
      if (p.dataPosition() < 0) {
        java.util.Arrays.fill(bytes, at, at + p.length(), (byte) 0);
        continue;
      }
      ByteBuffer into = ByteBuffer.wrap(bytes, at, p.length());
      long position = p.dataPosition();
      while (into.hasRemaining()) {
        int n = data.read(into, position + (into.position() - at));
        if (n < 0) {
          throw new IOException("the local log data ended early");
        }
      }
    }
  }

  @Override
  public void close() throws IOException {
    data.close();
  }
}
