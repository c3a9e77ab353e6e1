package io.siterecovery.agent.nbd;

import java.io.IOException;
import java.nio.ByteBuffer;

/**
 * What the NBD front-end serves. This is the driver seam: a raw image on this host today, a
 * Hyper-V or libvirt disk tomorrow.
 */
public interface BlockDevice {
  long size();

  boolean readOnly();

  void read(long offset, ByteBuffer dst) throws IOException;

  void write(long offset, ByteBuffer src, boolean fua) throws IOException;

  void writeZeroes(long offset, long length, boolean fua) throws IOException;

  /** Discard; this device guarantees zeroes afterwards so that source and replica stay equal. */
  default void trim(long offset, long length, boolean fua) throws IOException {
    writeZeroes(offset, length, fua);
  }

  void flush() throws IOException;
}
