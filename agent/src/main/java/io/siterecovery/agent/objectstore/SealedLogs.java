package io.siterecovery.agent.objectstore;

import io.siterecovery.agent.hrl.HrlHeader;
import io.siterecovery.agent.hrl.HrlReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A disk's log object read back: downloaded, authenticated, checked to be the sealed .hrl of that
 * disk and generation, and handed over as a plaintext file that is gone afterwards. Both the
 * replica's rebuild and the recovery host's log index read logs this one way.
 */
public final class SealedLogs {
  private SealedLogs() {}

  /** What is done with the plaintext log while it exists. */
  public interface Reader {
    void read(Path plainLog) throws IOException;
  }

  public static void read(ObjectStore store, SealedObjects sealed, ObjectNames names,
      PointManifest.Disk disk, long generation, Path scratch, Reader reader) throws IOException {
    String key = names.log(disk.index(), generation);
    Files.createDirectories(scratch);
    Path sealedFile = Files.createTempFile(scratch, "log-", ".sealed");
    Path plain = Files.createTempFile(scratch, "log-", ".hrl");
    try {
      store.get(key, sealedFile);
      try (InputStream in = Files.newInputStream(sealedFile);
          OutputStream out = Files.newOutputStream(plain)) {
        sealed.open(key, in, out);
      }
      HrlHeader header = HrlReader.verifySealed(plain).header();
      if (!header.diskId().equals(disk.diskId()) || header.generation() != generation) {
        throw new ObjectMismatchException(key, "holds generation " + header.generation()
            + " of disk " + header.diskId());
      }
      reader.read(plain);
    } finally {
      Files.deleteIfExists(sealedFile);
      Files.deleteIfExists(plain);
    }
  }
}
