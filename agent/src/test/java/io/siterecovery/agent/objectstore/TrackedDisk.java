package io.siterecovery.agent.objectstore;

import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.hrl.HrlHeader;
import io.siterecovery.agent.hrl.HrlWriter;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.UUID;

/**
 * A source disk as the agent keeps one: a raw image whose every write is also appended to the
 * active .hrl log; {@link #swap()} seals the log and opens the next generation, and
 * {@link #snapshot} copies the image as it is at that moment, the oracle for a recovery point.
 */
final class TrackedDisk implements AutoCloseable {
  final int index;
  final UUID id = UUID.randomUUID();
  final Path image;
  final long size;
  private final Path dir;
  private HrlWriter log;
  private long generation;

  TrackedDisk(Path dir, int index, long size) throws IOException {
    this.dir = dir;
    this.index = index;
    this.size = size;
    this.image = dir.resolve("disk" + index + ".img");
    try (RandomAccessFile file = new RandomAccessFile(image.toFile(), "rw")) {
      file.setLength(size);
    }
    openLog();
  }

  BucketReplica.DiskImage asImage() {
    return new BucketReplica.DiskImage(index, id, image);
  }

  void write(long offset, byte[] data) throws IOException {
    log.appendWrite(offset, ByteBuffer.wrap(data));
    try (FileChannel ch = FileChannel.open(image, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.wrap(data), offset);
    }
  }

  void zero(long offset, int length) throws IOException {
    log.appendZero(offset, length);
    try (FileChannel ch = FileChannel.open(image, StandardOpenOption.WRITE)) {
      ch.write(ByteBuffer.allocate(length), offset);
    }
  }

  /** Seals the active log and returns it; writes go to the next generation from now on. */
  Path swap() throws IOException {
    log.seal();
    log.close();
    Path sealed = log.path();
    openLog();
    return sealed;
  }

  Path snapshot(String name) throws IOException {
    return Files.copy(image, dir.resolve(name), StandardCopyOption.REPLACE_EXISTING);
  }

  private void openLog() throws IOException {
    generation++;
    log = HrlWriter.create(dir.resolve(HrlFormat.fileName("disk" + index, generation)),
        new HrlHeader(id, generation, size, System.currentTimeMillis()));
  }

  @Override
  public void close() throws IOException {
    log.close();
  }
}
