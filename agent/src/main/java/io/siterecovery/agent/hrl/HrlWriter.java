package io.siterecovery.agent.hrl;

import java.io.Closeable;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.zip.CRC32C;

/**
 * Appends records to the active log of one disk. Not thread-safe: the disk serialises writers so
 * that the order of records is the order in which writes reached the disk.
 */
public final class HrlWriter implements Closeable {
  private final Path path;
  private final HrlHeader header;
  private final FileChannel channel;
  /** CRC32C of every byte written so far; it becomes the trailer's file checksum. */
  private final CRC32C fileCrc;
  private long position;
  private long records;
  private long dataBytes;

  private HrlWriter(Path path, HrlHeader header, FileChannel channel, CRC32C fileCrc,
      long position, long records, long dataBytes) {
    this.path = path;
    this.header = header;
    this.channel = channel;
    this.fileCrc = fileCrc;
    this.position = position;
    this.records = records;
    this.dataBytes = dataBytes;
  }

  public static HrlWriter create(Path path, HrlHeader header) throws IOException {
    FileChannel channel = FileChannel.open(path, StandardOpenOption.CREATE_NEW,
        StandardOpenOption.WRITE, StandardOpenOption.READ);
    ByteBuffer encoded = header.encode();
    CRC32C crc = new CRC32C();
    crc.update(encoded.duplicate());
    try {
      writeFully(channel, encoded, 0);
      channel.force(true);
      // the directory entry too: a power loss must not lose a log whose writes were acknowledged
      try (FileChannel dir = FileChannel.open(path.toAbsolutePath().getParent(),
          StandardOpenOption.READ)) {
        dir.force(true);
      }
    } catch (IOException | RuntimeException e) {
      channel.close();
      throw e;
    }
    return new HrlWriter(path, header, channel, crc, HrlFormat.HEADER_SIZE, 0, 0);
  }

  /** Reopens an unsealed log after a restart, dropping a torn tail found by the scan. */
  public static HrlWriter resume(Path path, HrlReader.Scan scan) throws IOException {
    if (scan.sealed()) {
      throw new IllegalStateException(path + " is sealed and immutable");
    }
    FileChannel channel = FileChannel.open(path, StandardOpenOption.WRITE, StandardOpenOption.READ);
    channel.truncate(scan.validEnd());
    channel.force(true);
    return new HrlWriter(path, scan.header(), channel, scan.fileCrc(), scan.validEnd(),
        scan.records(), scan.dataBytes());
  }

  public void appendWrite(long offset, ByteBuffer data) throws IOException {
    ByteBuffer payload = data.duplicate();
    CRC32C dataCrc = new CRC32C();
    dataCrc.update(payload.duplicate());
    append(HrlFormat.TYPE_WRITE, offset, payload.remaining(), (int) dataCrc.getValue(), payload);
    dataBytes += payload.remaining();
  }

  public void appendZero(long offset, long length) throws IOException {
    long done = 0;
    while (done < length) {
      int chunk = (int) Math.min(length - done, 1L << 30);
      append(HrlFormat.TYPE_ZERO, offset + done, chunk, 0, null);
      done += chunk;
    }
  }

  private void append(short type, long offset, int length, int dataCrc, ByteBuffer data)
      throws IOException {
    ByteBuffer head = HrlFormat.allocate(HrlFormat.RECORD_HEADER_SIZE);
    head.putInt(HrlFormat.RECORD_MAGIC);
    head.putShort(type);
    head.putShort((short) 0);
    head.putLong(offset);
    head.putInt(length);
    head.putInt(dataCrc);
    head.putInt(HrlFormat.crc(head, 0, 24));
    head.putInt(0);
    head.flip();
    ByteBuffer headCopy = head.duplicate();
    try {
      if (data == null) {
        writeFully(channel, head, position);
      } else {
        // One writev for header and data: a tracked write costs two syscalls, not three.
        ByteBuffer[] record = {head, data.duplicate()};
        channel.position(position);
        long remaining = HrlFormat.RECORD_HEADER_SIZE + (long) length;
        while (remaining > 0) {
          remaining -= channel.write(record);
        }
      }
    } catch (IOException | RuntimeException e) {
      // ENOSPC mid-record: the record was not made, so it leaves no bytes and no checksum
      // behind (the file checksum once counted it, and the sealed log then failed to verify).
      cutBackTo(position);
      throw e;
    }
    // counted only once written: a failed record is not part of the log
    fileCrc.update(headCopy);
    if (data != null) {
      fileCrc.update(data.duplicate());
    }
    position += HrlFormat.RECORD_HEADER_SIZE + (data == null ? 0 : length);
    records++;
  }

  /** Makes every appended record durable (FLUSH and FUA). */
  public void force() throws IOException {
    channel.force(false);
  }

  /** Writes the trailer and makes the log immutable. */
  public void seal() throws IOException {
    ByteBuffer trailer = HrlFormat.allocate(HrlFormat.TRAILER_SIZE);
    trailer.putInt(HrlFormat.TRAILER_MAGIC);
    trailer.putInt(0);
    trailer.putLong(records);
    trailer.putLong(dataBytes);
    trailer.putInt((int) fileCrc.getValue());
    trailer.putInt(HrlFormat.crc(trailer, 0, 28));
    trailer.flip();
    try {
      writeFully(channel, trailer, position);
      channel.force(true);
    } catch (IOException | RuntimeException e) {
      cutBackTo(position); // still the active, unsealed log: a later record overwrites nothing
      throw e;
    }
    position += HrlFormat.TRAILER_SIZE;
    channel.close();
  }

  /** Best effort: drops whatever a failed write left past {@code end}. */
  private void cutBackTo(long end) {
    try {
      if (channel.isOpen() && channel.size() > end) {
        channel.truncate(end);
      }
    } catch (IOException | RuntimeException ignored) {
      // the next append overwrites from end anyway; the reader stops at the trailer
    }
  }

  public long generation() {
    return header.generation();
  }

  public long sizeBytes() {
    return position;
  }

  public long records() {
    return records;
  }

  public Path path() {
    return path;
  }

  @Override
  public void close() throws IOException {
    channel.close();
  }

  static void writeFully(FileChannel channel, ByteBuffer buffer, long at) throws IOException {
    long pos = at;
    while (buffer.hasRemaining()) {
      pos += channel.write(buffer, pos);
    }
  }
}
