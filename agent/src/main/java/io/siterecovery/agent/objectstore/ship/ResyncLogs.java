package io.siterecovery.agent.objectstore.ship;

import io.siterecovery.agent.objectstore.ObjectNames;
import io.siterecovery.agent.objectstore.ObjectStore;
import io.siterecovery.agent.objectstore.PointManifest;
import io.siterecovery.agent.objectstore.SealedObjectException;
import io.siterecovery.agent.objectstore.SealedObjects;
import io.siterecovery.agent.objectstore.recover.LogIndex;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The logs of the bucket point a resync compares with, indexed by chunk for each disk, kept from
 * one step of the resync to the next, so they are downloaded once per resync rather than once per
 * bounded step. The records' data is in files in the VM's scratch folder, gone when the resync
 * completes or starts over, or when the agent stops (a restarted agent downloads them again).
 */
final class ResyncLogs implements Closeable {
  private static final Logger log = LoggerFactory.getLogger(ResyncLogs.class);

  private final String resync;
  private final Path scratch;
  private final Map<Integer, LogIndex> indexes = new HashMap<>();
  private final Set<Integer> unusable = new HashSet<>();

  /** {@code resync} names the resync (its checkpoint's header): another one starts afresh. */
  ResyncLogs(String resync, Path scratch) {
    this.resync = resync;
    this.scratch = scratch;
  }

  String resync() {
    return resync;
  }

  /**
   * The point's logs of {@code disk}, downloaded and indexed on the first call; null when one of
   * them cannot be used (damaged, missing, another's): then what the bucket holds of that disk is
   * unknown, and the resync stores each of its chunks again.
   */
  synchronized LogIndex disk(ObjectStore store, SealedObjects sealed, ObjectNames names,
      PointManifest.Disk disk) throws IOException {
    if (unusable.contains(disk.index())) {
      return null;
    }
    LogIndex index = indexes.get(disk.index());
    if (index != null) {
      return index;
    }
    Files.createDirectories(scratch);
    try {
      index = LogIndex.build(store, sealed, names, disk, dataFile(disk.index()), scratch);
    } catch (SealedObjectException e) {
      log.warn("resync of bucket VM {}: a log of disk {} cannot be used ({}); every chunk of the"
          + " disk is stored again", names.vmId(), disk.index(), e.getMessage());
      Files.deleteIfExists(dataFile(disk.index()));
      unusable.add(disk.index());
      return null;
    }
    indexes.put(disk.index(), index);
    return index;
  }

  private Path dataFile(int disk) {
    return scratch.resolve("resync-logs-" + disk + ".data");
  }

  @Override
  public synchronized void close() throws IOException {
    for (Map.Entry<Integer, LogIndex> e : indexes.entrySet()) {
      e.getValue().close();
      Files.deleteIfExists(dataFile(e.getKey()));
    }
    indexes.clear();
  }
}
