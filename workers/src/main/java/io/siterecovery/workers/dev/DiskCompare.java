package io.siterecovery.workers.dev;

import io.siterecovery.agent.nbd.NbdClient;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/** Byte-for-byte comparison of disk images; returns the first differing offset or -1. */
public final class DiskCompare {
  private DiskCompare() {}

  public static long firstDifference(Path a, Path b) throws IOException {
    try (FileChannel ca = FileChannel.open(a, StandardOpenOption.READ);
        FileChannel cb = FileChannel.open(b, StandardOpenOption.READ)) {
      if (ca.size() != cb.size()) {
        return Math.min(ca.size(), cb.size());
      }
      ByteBuffer ba = ByteBuffer.allocate(1 << 20);
      ByteBuffer bb = ByteBuffer.allocate(1 << 20);
      for (long pos = 0; pos < ca.size(); pos += ba.capacity()) {
        ba.clear();
        bb.clear();
        read(ca, ba, pos);
        read(cb, bb, pos);
        int m = ba.flip().mismatch(bb.flip());
        if (m >= 0) {
          return pos + m;
        }
      }
      return -1;
    }
  }

  /** The same for a disk served over NBD (a test VM, a running replica) against an image. */
  public static long firstDifference(NbdClient export, Path image) throws IOException {
    try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
      if (export.size() != ch.size()) {
        return Math.min(export.size(), ch.size());
      }
      ByteBuffer file = ByteBuffer.allocate(1 << 20);
      for (long pos = 0; pos < ch.size(); pos += file.capacity()) {
        int n = (int) Math.min(file.capacity(), ch.size() - pos);
        file.clear().limit(n);
        read(ch, file, pos);
        int m = ByteBuffer.wrap(export.read(pos, n)).mismatch(file.flip());
        if (m >= 0) {
          return pos + m;
        }
      }
      return -1;
    }
  }

  private static void read(FileChannel ch, ByteBuffer buf, long pos) throws IOException {
    while (buf.hasRemaining()) {
      if (ch.read(buf, pos + buf.position()) < 0) {
        break;
      }
    }
  }
}
