package io.siterecovery.agent.objectstore;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * What a VM's part of a bucket holds, read as a reader would: the committed points (newest
 * revisions), the chunk and log objects they name, and every data object present, each opened
 * and authenticated whole. {@link #of} fails the test if a point names an object that is missing
 * or does not authenticate: a point must never reference a half-written object.
 */
record BucketAudit(List<Long> points, Set<String> dataObjects, Set<String> referenced,
    Set<String> unreadable) {

  /** Data objects no committed point names: left by a run that died before its manifest. */
  Set<String> unreferenced() {
    Set<String> left = new TreeSet<>(dataObjects);
    left.removeAll(referenced);
    return left;
  }

  static BucketAudit of(ObjectStore store, SealedObjects sealed, String vmId, Path scratch)
      throws IOException {
    ObjectNames names = new ObjectNames(vmId);
    BucketReplica replica = new BucketReplica(store, sealed, vmId,
        BucketReplica.DEFAULT_CHUNK_SIZE, 1, scratch);
    Set<String> dataObjects = new TreeSet<>();
    for (String key : store.list(names.vmPrefix())) {
      if (names.isDataObject(key)) {
        dataObjects.add(key);
      }
    }
    TreeMap<String, String> unreadable = new TreeMap<>();
    for (String key : dataObjects) {
      String failure = openFailure(store, sealed, key, scratch);
      if (failure != null) {
        unreadable.put(key, failure);
      }
    }
    List<Long> points = replica.pointIds();
    Set<String> referenced = new HashSet<>();
    for (long point : points) {
      for (PointManifest.Disk disk : replica.manifest(point).disks()) {
        long[] generations = disk.chunkGenerations();
        for (int chunk = 0; chunk < generations.length; chunk++) {
          if (generations[chunk] != PointManifest.ZERO) {
            referenced.add(names.chunk(disk.index(), chunk, generations[chunk]));
          }
        }
        disk.logGenerations().forEach(g -> referenced.add(names.log(disk.index(), g)));
      }
    }
    assertThat(dataObjects).as("objects the committed points name are present")
        .containsAll(referenced);
    assertThat(unreadable).as("objects the committed points name that do not authenticate")
        .doesNotContainKeys(referenced.toArray(String[]::new));
    return new BucketAudit(points, dataObjects, Set.copyOf(referenced), unreadable.keySet());
  }

  private static String openFailure(ObjectStore store, SealedObjects sealed, String key,
      Path scratch) throws IOException {
    Path copy = Files.createDirectories(scratch).resolve("audit.obj");
    try {
      store.get(key, copy);
      try (InputStream in = Files.newInputStream(copy)) {
        sealed.open(key, in, OutputStream.nullOutputStream());
      }
      return null;
    } catch (SealedObjectException e) {
      return e.toString();
    } finally {
      Files.deleteIfExists(copy);
    }
  }
}
