package io.siterecovery.agent.objectstore;

import io.siterecovery.agent.Json;
import io.siterecovery.agent.hrl.HrlHeader;
import io.siterecovery.agent.hrl.HrlReader;
import io.siterecovery.agent.hrl.HrlRecord;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.Semaphore;

/**
 * One VM's replica in a bucket (the layout): chunk objects for the initial copy, one object per
 * sealed .hrl generation, and a manifest per recovery point written after every object it names,
 * so a point that is listed is complete. Every object is sealed by {@link SealedObjects} under
 * its own name; the names are {@link ObjectNames}'. Not safe for two writers on one VM at once:
 * the source agent is the only writer, the recovery agent only reads.
 */
public final class BucketReplica {
  public static final int DEFAULT_CHUNK_SIZE = 4 << 20;
  private static final int MIN_CHUNK_SIZE = 64 << 10;
  private static final int MAX_CHUNK_SIZE = 64 << 20;
  private static final int MAX_DISKS = 64;
  private static final long MAX_MANIFEST_BYTES = 64L << 20;

  /** A disk image to copy: its index in the VM, its identity (as in its .hrl headers), its file. */
  public record DiskImage(int index, UUID diskId, Path image) {}

  /** What a prune did: the points it dropped, the chunks it wrote and the objects it deleted. */
  public record PruneResult(List<Long> droppedPoints, int chunksWritten, int objectsDeleted) {}

  private final ObjectStore store;
  private final SealedObjects sealed;
  private final ObjectNames names;
  private final int chunkSize;
  private final int uploadThreads;
  private final Path scratch;

  public BucketReplica(ObjectStore store, SealedObjects sealed, String vmId, int chunkSize,
      int uploadThreads, Path scratch) {
    if (chunkSize < MIN_CHUNK_SIZE || chunkSize > MAX_CHUNK_SIZE
        || Integer.bitCount(chunkSize) != 1) {
      throw new IllegalArgumentException("chunk size must be a power of two in 64 KiB..64 MiB: "
          + chunkSize);
    }
    if (uploadThreads < 1 || uploadThreads > 64) {
      throw new IllegalArgumentException("upload threads out of range: " + uploadThreads);
    }
    this.store = store;
    this.sealed = sealed;
    this.names = new ObjectNames(vmId);
    this.chunkSize = chunkSize;
    this.uploadThreads = uploadThreads;
    this.scratch = scratch;
  }

  public ObjectNames names() {
    return names;
  }

  /**
   * Copies each image as chunk objects (chunks that read as zeroes are recorded, not stored),
   * then ships the logs tracked during the copy (which make the copy consistent, as for a replica
   * fed by an agent), then commits the first point.
   */
  public PointManifest initialCopy(List<DiskImage> disks, Map<Integer, List<Path>> logsDuringCopy)
      throws IOException {
    if (disks.isEmpty() || disks.size() > MAX_DISKS) {
      throw new IllegalArgumentException("a VM has 1 to " + MAX_DISKS + " disks");
    }
    if (!points().isEmpty()) {
      throw new IllegalStateException("VM " + names.vmId() + " already has points in the bucket");
    }
    List<PointManifest.Disk> copied = new ArrayList<>();
    for (DiskImage disk : disks) {
      long size = Files.size(disk.image());
      long[] generations = uploadChunks(disk, size);
      copied.add(new PointManifest.Disk(disk.index(), disk.diskId(), size, chunkSize,
          generations, List.of(), 0));
    }
    return commit(1, copied, logsDuringCopy, false);
  }

  /**
   * Commits the first point from chunk objects a resumable copy uploaded itself (each named
   * {@link ObjectNames#chunk} at generation 0, or {@link PointManifest#ZERO} in {@code copied})
   * and the logs tracked during that copy, which make it consistent.
   */
  public PointManifest commitInitial(List<PointManifest.Disk> copied,
      Map<Integer, List<Path>> logsDuringCopy) throws IOException {
    if (!points().isEmpty()) {
      throw new IllegalStateException("VM " + names.vmId() + " already has points in the bucket");
    }
    return commit(1, copied, logsDuringCopy, false);
  }

  /**
   * Ships sealed .hrl generations per disk index, in order, then commits them as a new point,
   * app-consistent when the newest generation was sealed right after a successful quiesce.
   */
  public PointManifest shipLogs(Map<Integer, List<Path>> sealedLogs, boolean appConsistent)
      throws IOException {
    List<ObjectNames.ManifestName> points = points();
    if (points.isEmpty()) {
      throw new IllegalStateException("VM " + names.vmId() + " has no initial copy in the bucket");
    }
    PointManifest latest = manifest(points.get(points.size() - 1));
    return commit(latest.pointId() + 1, latest.disks(), sealedLogs, appConsistent);
  }

  /**
   * Commits a resync's point on top of point {@code basePointId}, which must still be the latest:
   * the disks' chunk objects as the resync left them (each stored beforehand), each disk's
   * {@code lastLogGeneration} the resync's sealed generation, and on top the logs sealed after it
   * ({@code logsSinceResync}, shipped here), which make the point consistent.
   */
  public PointManifest commitResync(long basePointId, List<PointManifest.Disk> disks,
      Map<Integer, List<Path>> logsSinceResync) throws IOException {
    List<ObjectNames.ManifestName> points = points();
    if (points.isEmpty() || points.get(points.size() - 1).pointId() != basePointId) {
      throw new IllegalStateException("point " + basePointId + " of VM " + names.vmId()
          + " is no longer the latest");
    }
    for (PointManifest.Disk d : disks) {
      if (!d.logGenerations().isEmpty()) {
        throw new IllegalArgumentException("a resync's point names no log");
      }
    }
    return commit(basePointId + 1, disks, logsSinceResync, false);
  }

  private PointManifest commit(long pointId, List<PointManifest.Disk> base,
      Map<Integer, List<Path>> sealedLogs, boolean appConsistent) throws IOException {
    List<PointManifest.Disk> disks = new ArrayList<>();
    for (PointManifest.Disk disk : base) {
      List<Long> logs = new ArrayList<>(disk.logGenerations());
      long last = disk.lastLogGeneration();
      for (Path log : sealedLogs.getOrDefault(disk.index(), List.of())) {
        HrlHeader header = HrlReader.verifySealed(log).header();
        if (!header.diskId().equals(disk.diskId()) || header.diskSize() != disk.size()) {
          throw new IllegalArgumentException(log + " is not a log of disk " + disk.index());
        }
        if (header.generation() <= last) {
          throw new IllegalArgumentException(log + ": generation " + header.generation()
              + " does not follow " + last);
        }
        putSealed(names.log(disk.index(), header.generation()), log);
        logs.add(header.generation());
        last = header.generation();
      }
      disks.add(new PointManifest.Disk(disk.index(), disk.diskId(), disk.size(),
          disk.chunkSize(), disk.chunkGenerations(), List.copyOf(logs), last));
    }
    for (Integer index : sealedLogs.keySet()) {
      if (disks.stream().noneMatch(d -> d.index() == index)) {
        throw new IllegalArgumentException("no disk " + index + " in VM " + names.vmId());
      }
    }
    PointManifest manifest = new PointManifest(PointManifest.FORMAT, names.vmId(), pointId, 0,
        System.currentTimeMillis(), List.copyOf(disks), appConsistent);
    writeManifest(manifest);
    return manifest;
  }

  /** The committed points, oldest first, each at its newest revision. */
  public List<ObjectNames.ManifestName> points() throws IOException {
    Map<Long, ObjectNames.ManifestName> newest = new TreeMap<>();
    for (String key : store.list(names.pointsPrefix())) {
      names.parseManifest(key).ifPresent(m -> newest.merge(m.pointId(), m,
          (a, b) -> a.revision() >= b.revision() ? a : b));
    }
    return List.copyOf(newest.values());
  }

  public List<Long> pointIds() throws IOException {
    return points().stream().map(ObjectNames.ManifestName::pointId).toList();
  }

  public PointManifest manifest(long pointId) throws IOException {
    return manifest(points().stream().filter(p -> p.pointId() == pointId).findFirst()
        .orElseThrow(() -> new IllegalArgumentException("no point " + pointId + " for VM "
            + names.vmId())));
  }

  private PointManifest manifest(ObjectNames.ManifestName name) throws IOException {
    String key = names.manifest(name.pointId(), name.revision());
    PointManifest m = Json.MAPPER.readValue(sealed.open(key,
        store.get(key, (int) sealed.sealedLength(key, MAX_MANIFEST_BYTES))), PointManifest.class);
    // authentic (sealed under its name), so a mismatch here is our bug, not an attack
    if (m.format() != PointManifest.FORMAT || !m.vmId().equals(names.vmId())
        || m.pointId() != name.pointId() || m.revision() != name.revision()) {
      throw new ObjectMismatchException(key, "the manifest describes another point");
    }
    for (PointManifest.Disk d : m.disks()) {
      if (d.chunkGenerations().length != PointManifest.chunkCount(d.size(), d.chunkSize())) {
        throw new ObjectCorruptException(key, "disk " + d.index() + " chunk list length");
      }
    }
    return m;
  }

  private void writeManifest(PointManifest manifest) throws IOException {
    byte[] json = Json.MAPPER.writeValueAsBytes(manifest);
    if (json.length > MAX_MANIFEST_BYTES) {
      throw new IllegalStateException("manifest of " + json.length + " bytes");
    }
    String key = names.manifest(manifest.pointId(), manifest.revision());
    store.put(key, sealed.seal(key, json));
  }

  /**
   * Rebuilds disk {@code diskIndex} as it was at {@code pointId} into {@code target}: the chunks,
   * then the logs in order. Every object is authenticated before a byte of it is used; on any
   * failure nothing is left at {@code target} (the image is built beside it and renamed into
   * place only when complete).
   */
  public void materialize(long pointId, int diskIndex, Path target) throws IOException {
    PointManifest.Disk disk = manifest(pointId).disk(diskIndex);
    Path partial = target.resolveSibling(target.getFileName() + ".partial");
    try {
      try (RandomAccessFile file = new RandomAccessFile(partial.toFile(), "rw")) {
        file.setLength(0);
        file.setLength(disk.size());
        FileChannel channel = file.getChannel();
        writeChunks(disk, channel, null);
        for (long generation : disk.logGenerations()) {
          applyLog(disk, generation, channel);
        }
        channel.force(true);
      }
      Files.move(partial, target, StandardCopyOption.ATOMIC_MOVE,
          StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException | RuntimeException e) {
      Files.deleteIfExists(partial);
      throw e;
    }
  }

  /**
   * Keeps the newest {@code keep} points and deletes the rest. The oldest kept point's logs are
   * folded into new chunk objects (only the chunks they touch), every kept point is rewritten as
   * a new manifest revision on that base, and then the objects no kept manifest names are
   * deleted: dropped points' manifests first, so no listed point ever lacks an object.
   */
  public PruneResult prune(int keep) throws IOException {
    if (keep < 1) {
      throw new IllegalArgumentException("keep at least one point");
    }
    List<ObjectNames.ManifestName> all = points();
    if (all.isEmpty()) {
      return new PruneResult(List.of(), 0, 0);
    }
    List<ObjectNames.ManifestName> kept = all.subList(Math.max(0, all.size() - keep), all.size());
    List<Long> dropped = all.subList(0, all.size() - kept.size()).stream()
        .map(ObjectNames.ManifestName::pointId).toList();
    PointManifest oldest = manifest(kept.get(0));
    int chunksWritten = 0;
    List<PointManifest.Disk> base = new ArrayList<>();
    for (PointManifest.Disk disk : oldest.disks()) {
      long[] folded = disk.chunkGenerations().clone();
      chunksWritten += fold(disk, oldest.pointId(), folded);
      base.add(new PointManifest.Disk(disk.index(), disk.diskId(), disk.size(), disk.chunkSize(),
          folded, List.of(), disk.lastLogGeneration()));
    }
    Set<String> referenced = new HashSet<>();
    if (oldest.disks().stream().anyMatch(d -> !d.logGenerations().isEmpty())) {
      // Oldest first: after a crash part-way, the oldest point is already on the new base and
      // has no logs, so the next prune keeps the others as they are (all their objects still
      // exist) instead of folding against a base they no longer share.
      for (ObjectNames.ManifestName name : kept) {
        PointManifest point = manifest(name);
        List<PointManifest.Disk> disks = new ArrayList<>();
        for (PointManifest.Disk disk : point.disks()) {
          List<Long> folded = oldest.disk(disk.index()).logGenerations();
          if (disk.logGenerations().size() < folded.size()
              || !disk.logGenerations().subList(0, folded.size()).equals(folded)
              || !Arrays.equals(disk.chunkGenerations(),
                  oldest.disk(disk.index()).chunkGenerations())) {
            throw new IllegalStateException("point " + point.pointId() + " does not extend point "
                + oldest.pointId());
          }
          PointManifest.Disk b = base.stream().filter(x -> x.index() == disk.index()).findFirst()
              .orElseThrow();
          disks.add(new PointManifest.Disk(disk.index(), disk.diskId(), disk.size(),
              disk.chunkSize(), b.chunkGenerations(),
              List.copyOf(disk.logGenerations().subList(folded.size(),
                  disk.logGenerations().size())), disk.lastLogGeneration()));
        }
        PointManifest rewritten = new PointManifest(PointManifest.FORMAT, names.vmId(),
            point.pointId(), name.revision() + 1, point.createdMillis(), List.copyOf(disks),
            point.appConsistent());
        writeManifest(rewritten);
        referenced.addAll(objectsOf(rewritten));
        referenced.add(names.manifest(rewritten.pointId(), rewritten.revision()));
      }
    } else {
      for (ObjectNames.ManifestName name : kept) {
        referenced.addAll(objectsOf(manifest(name)));
        referenced.add(names.manifest(name.pointId(), name.revision()));
      }
    }
    int deleted = 0;
    List<String> present = store.list(names.vmPrefix());
    // manifests first: a point must disappear before any object it needs
    for (String key : present) {
      if (names.parseManifest(key).isPresent() && !referenced.contains(key)) {
        store.delete(key);
        deleted++;
      }
    }
    for (String key : present) {
      if (names.isDataObject(key) && !referenced.contains(key)) {
        store.delete(key);
        deleted++;
      }
    }
    return new PruneResult(dropped, chunksWritten, deleted);
  }

  /**
   * Deletes every object of the VM in the bucket: its manifests first, so that no reader ever
   * finds a point whose objects are going, then its chunks and logs; the number deleted. Only keys
   * of this layout under the VM's prefix.
   */
  public int deleteAll() throws IOException {
    List<String> present = store.list(names.vmPrefix());
    int deleted = 0;
    for (String key : present) {
      if (names.parseManifest(key).isPresent()) {
        store.delete(key);
        deleted++;
      }
    }
    for (String key : present) {
      if (names.isDataObject(key)) {
        store.delete(key);
        deleted++;
      }
    }
    return deleted;
  }

  private Set<String> objectsOf(PointManifest point) {
    Set<String> keys = new TreeSet<>();
    for (PointManifest.Disk disk : point.disks()) {
      long[] generations = disk.chunkGenerations();
      for (int i = 0; i < generations.length; i++) {
        if (generations[i] != PointManifest.ZERO) {
          keys.add(names.chunk(disk.index(), i, generations[i]));
        }
      }
      for (long log : disk.logGenerations()) {
        keys.add(names.log(disk.index(), log));
      }
    }
    return keys;
  }

  /**
   * Applies a disk's logs to the chunks they touch, in a sparse scratch image that holds only
   * those chunks, and uploads them as chunk generation {@code generation}; returns how many.
   */
  private int fold(PointManifest.Disk disk, long generation, long[] chunkGenerations)
      throws IOException {
    if (disk.logGenerations().isEmpty()) {
      return 0;
    }
    Set<Long> touched = new TreeSet<>();
    Files.createDirectories(scratch);
    Path image = Files.createTempFile(scratch, "fold-", ".img");
    try (RandomAccessFile file = new RandomAccessFile(image.toFile(), "rw")) {
      file.setLength(disk.size());
      FileChannel channel = file.getChannel();
      for (long log : disk.logGenerations()) {
        withLog(disk, log, plain -> HrlReader.visitVerifying(plain, record -> {
          if (record.length() > 0) {
            touched.addAll(range(record.offset() / disk.chunkSize(),
                (record.offset() + record.length() - 1) / disk.chunkSize()));
          }
        }));
      }
      writeChunks(disk, channel, touched);
      for (long log : disk.logGenerations()) {
        applyLog(disk, log, channel);
      }
      byte[] buffer = new byte[disk.chunkSize()];
      for (long chunk : touched) {
        int length = disk.chunkLength(chunk);
        readFully(channel, buffer, length, chunk * disk.chunkSize());
        if (isZero(buffer, length)) {
          chunkGenerations[(int) chunk] = PointManifest.ZERO;
        } else {
          String key = names.chunk(disk.index(), chunk, generation);
          store.put(key, sealed.seal(key, Arrays.copyOf(buffer, length)));
          chunkGenerations[(int) chunk] = generation;
        }
      }
    } finally {
      Files.deleteIfExists(image);
    }
    return touched.size();
  }

  private static List<Long> range(long from, long to) {
    List<Long> values = new ArrayList<>();
    for (long i = from; i <= to; i++) {
      values.add(i);
    }
    return values;
  }

  private long[] uploadChunks(DiskImage disk, long size) throws IOException {
    long[] generations = new long[(int) PointManifest.chunkCount(size, chunkSize)];
    ExecutorService pool = Executors.newFixedThreadPool(uploadThreads);
    // bounds the chunks in memory to two per thread
    Semaphore inFlight = new Semaphore(2 * uploadThreads);
    List<Future<?>> uploads = new ArrayList<>();
    try (FileChannel channel = FileChannel.open(disk.image(), StandardOpenOption.READ)) {
      for (int chunk = 0; chunk < generations.length; chunk++) {
        int length = (int) Math.min(chunkSize, size - (long) chunk * chunkSize);
        byte[] buffer = new byte[length];
        readFully(channel, buffer, length, (long) chunk * chunkSize);
        if (isZero(buffer, length)) {
          generations[chunk] = PointManifest.ZERO;
          continue;
        }
        generations[chunk] = 0;
        String key = names.chunk(disk.index(), chunk, 0);
        inFlight.acquireUninterruptibly();
        uploads.add(pool.submit(() -> {
          try {
            store.put(key, sealed.seal(key, buffer));
          } finally {
            inFlight.release();
          }
          return null;
        }));
        // a failed upload stops the copy now, not after the whole disk was read
        while (!uploads.isEmpty() && uploads.get(0).isDone()) {
          awaitUpload(uploads.remove(0));
        }
      }
      for (Future<?> upload : uploads) {
        awaitUpload(upload);
      }
    } finally {
      pool.shutdownNow();
    }
    return generations;
  }

  /** Waits for one parallel upload, its failure as the IOException it was. */
  public static void awaitUpload(Future<?> upload) throws IOException {
    try {
      upload.get();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IOException("interrupted while uploading", e);
    } catch (ExecutionException e) {
      if (e.getCause() instanceof IOException io) {
        throw io;
      }
      throw new IOException("chunk upload failed", e.getCause());
    }
  }

  /** Writes the disk's stored chunks ({@code only} those, if not null) into {@code channel}. */
  private void writeChunks(PointManifest.Disk disk, FileChannel channel, Set<Long> only)
      throws IOException {
    long[] generations = disk.chunkGenerations();
    for (int chunk = 0; chunk < generations.length; chunk++) {
      if (generations[chunk] == PointManifest.ZERO || (only != null && !only.contains((long) chunk))) {
        continue;
      }
      ByteBuffer data = ByteBuffer.wrap(readChunk(disk, chunk));
      long position = (long) chunk * disk.chunkSize();
      while (data.hasRemaining()) {
        position += channel.write(data, position);
      }
    }
  }

  /**
   * A chunk's object as the disk's base image holds it (zeroes for a {@link PointManifest#ZERO}
   * chunk), authenticated and of the chunk's length; the point's logs are not applied.
   */
  public byte[] readChunk(PointManifest.Disk disk, long chunk) throws IOException {
    long generation = disk.chunkGenerations()[(int) chunk];
    if (generation == PointManifest.ZERO) {
      return new byte[disk.chunkLength(chunk)];
    }
    String key = names.chunk(disk.index(), chunk, generation);
    byte[] plain = sealed.open(key,
        store.get(key, (int) sealed.sealedLength(key, disk.chunkLength(chunk))));
    if (plain.length != disk.chunkLength(chunk)) {
      throw new ObjectCorruptException(key, plain.length + " bytes, the chunk has "
          + disk.chunkLength(chunk));
    }
    return plain;
  }

  private void applyLog(PointManifest.Disk disk, long generation, FileChannel channel)
      throws IOException {
    withLog(disk, generation, plain -> HrlReader.visitVerifying(plain, record -> write(channel,
        record)));
  }

  private static void write(FileChannel channel, HrlRecord record) throws IOException {
    if (record.isZero()) {
      ByteBuffer zeroes = ByteBuffer.allocate((int) Math.min(record.length(), 1 << 20));
      long position = record.offset();
      long end = record.offset() + record.length();
      while (position < end) {
        zeroes.clear().limit((int) Math.min(zeroes.capacity(), end - position));
        position += channel.write(zeroes, position);
      }
      return;
    }
    ByteBuffer data = record.data().duplicate();
    long position = record.offset();
    while (data.hasRemaining()) {
      position += channel.write(data, position);
    }
  }

  /** Downloads, authenticates and checks a log object, then hands its plaintext .hrl file over. */
  private void withLog(PointManifest.Disk disk, long generation, SealedLogs.Reader reader)
      throws IOException {
    SealedLogs.read(store, sealed, names, disk, generation, scratch, reader);
  }

  /** Seals a file into scratch, then uploads it (in parts if large). */
  private void putSealed(String key, Path file) throws IOException {
    Files.createDirectories(scratch);
    Path sealedFile = Files.createTempFile(scratch, "put-", ".sealed");
    try {
      try (InputStream in = Files.newInputStream(file);
          OutputStream out = Files.newOutputStream(sealedFile)) {
        sealed.seal(key, in, Files.size(file), out);
      }
      store.put(key, sealedFile);
    } finally {
      Files.deleteIfExists(sealedFile);
    }
  }

  private static final byte[] ZEROES = new byte[64 << 10];

  private static boolean isZero(byte[] buffer, int length) {
    for (int from = 0; from < length; from += ZEROES.length) {
      int n = Math.min(ZEROES.length, length - from);
      if (Arrays.mismatch(buffer, from, from + n, ZEROES, 0, n) != -1) {
        return false;
      }
    }
    return true;
  }

  private static void readFully(FileChannel channel, byte[] buffer, int length, long position)
      throws IOException {
    ByteBuffer target = ByteBuffer.wrap(buffer, 0, length);
    while (target.hasRemaining()) {
      int n = channel.read(target, position + target.position());
      if (n < 0) {
        throw new IOException("image ended at " + (position + target.position()));
      }
    }
  }
}
