package io.siterecovery.agent.disk;

import java.io.Closeable;
import java.nio.file.Path;
import jnr.posix.POSIX;
import jnr.posix.POSIXFactory;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Where a sparse image holds data, from {@code lseek(SEEK_DATA)}: copies jump over holes instead
 * of reading gigabytes of zeroes. Where the call is unavailable (not Linux, no native access, a
 * filesystem without support) everything counts as data and callers just read.
 */
public final class DataExtents implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(DataExtents.class);
  private static final int SEEK_DATA = 3; // Linux's value; other systems differ
  private static final int ENXIO = 6;
  private static final POSIX POSIX = load();

  private final int fd;
  private final long size;

  private DataExtents(int fd, long size) {
    this.fd = fd;
    this.size = size;
  }

  public static DataExtents of(Path image, long size) {
    int fd = POSIX == null ? -1 : POSIX.open(image.toString(), 0, 0);
    return new DataExtents(fd, size);
  }

  private static POSIX load() {
    if (!System.getProperty("os.name", "").startsWith("Linux")) {
      return null;
    }
    try {
      POSIX posix = POSIXFactory.getNativePOSIX();
      posix.getpid();
      return posix;
    } catch (Throwable unavailable) {
      log.info("lseek(SEEK_DATA) unavailable ({}); sparse images are read in full", unavailable
          .toString());
      return null;
    }
  }

  /** The first offset at or after {@code offset} that may hold data; {@code size} if none. */
  public long nextData(long offset) {
    if (fd < 0 || offset >= size) {
      return Math.min(offset, size);
    }
    long data = POSIX.lseekLong(fd, offset, SEEK_DATA);
    if (data >= 0) {
      return Math.min(data, size);
    }
    return POSIX.errno() == ENXIO ? size : offset;
  }

  @Override
  public void close() {
    if (fd >= 0) {
      POSIX.close(fd);
    }
  }
}
