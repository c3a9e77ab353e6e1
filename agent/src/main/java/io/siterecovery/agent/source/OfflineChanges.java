package io.siterecovery.agent.source;

import io.siterecovery.agent.resync.ResyncLedger;

import io.siterecovery.agent.Json;
import io.siterecovery.agent.hrl.HrlFormat;
import io.siterecovery.agent.vm.VmRecord;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Detects, when the agent starts, that a protected disk image was written while the agent was
 * not running (attached to another hypervisor, restored from a backup, edited by a tool). Those
 * writes are in no .hrl log, so the replica can only catch up by a resync; the VM is marked so
 * in {@link ResyncLedger} and {@code SourceStatus.resyncRequiredReason} says why.
 *
 * <p>How: on a clean stop (after the NBD server and the disks are closed) the agent writes
 * {@code <vm dir>/clean-shutdown.json} with each image's size, modification time, change time
 * and inode. At start, before the trackers are opened:
 *
 * <ul>
 *   <li>after a clean stop, any difference in those four is a change made while the agent was
 *       down (the change time cannot be set by tools, so even a write that restores the
 *       modification time is seen); the file is then removed, so that it never describes an
 *       older run;</li>
 *   <li>after a crash (kill -9, power loss: no file), the agent writes each change to the
 *       active log before it writes the image, so the image's change time is at most moments
 *       after its newest log's modification time. An image whose change time is more than
 *       {@link #CRASH_SLACK} later was changed by someone else. A crash of the agent itself
 *       therefore is no false positive; a write made within that slack after a crash would be
 *       missed.</li>
 * </ul>
 */
public final class OfflineChanges {
  private static final Logger log = LoggerFactory.getLogger(OfflineChanges.class);
  static final String CLEAN_FILE = "clean-shutdown.json";
  private static final String RECORD_FILE = "vm.json";
  /** Log append to image write is microseconds; this covers a long GC pause between the two. */
  public static final long CRASH_SLACK_MILLIS = 2000;
  static final java.time.Duration CRASH_SLACK = java.time.Duration.ofMillis(CRASH_SLACK_MILLIS);

  /** What identifies an image's content from the outside, cheaply. */
  public record Stamp(long size, long mtimeNanos, long ctimeNanos, String inode) {}

  private OfflineChanges() {}

  /** Run at start, before the VMs are loaded; returns the VMs found changed. */
  public static List<String> detect(String site, Path dataDir) {
    List<String> changed = new ArrayList<>();
    Path vmsDir = dataDir.resolve("vms");
    if (!Files.isDirectory(vmsDir)) {
      return changed;
    }
    try (Stream<Path> dirs = Files.list(vmsDir)) {
      for (Path dir : dirs.filter(d -> Files.exists(d.resolve(RECORD_FILE))).toList()) {
        try {
          VmRecord record = Json.MAPPER.readValue(dir.resolve(RECORD_FILE).toFile(),
              VmRecord.class);
          Path clean = dir.resolve(CLEAN_FILE);
          if (record.protection() == null || record.role() != VmRecord.Role.PRIMARY) {
            Files.deleteIfExists(clean);
            continue;
          }
          List<String> reasons = Files.exists(clean) ? afterCleanStop(dir, record, clean)
              : afterCrash(dir, record);
          if (!reasons.isEmpty()) {
            String reason = "disk image modified while the agent was down: "
                + String.join("; ", reasons);
            ResyncLedger.markRequired(dir, reason);
            changed.add(record.name());
            log.warn("[{}] VM {} needs a resync: {}", site, record.name(), reason);
          }
          Files.deleteIfExists(clean);
        } catch (IOException | RuntimeException e) {
          log.error("[{}] cannot check {} for changes made while the agent was down", site, dir,
              e);
        }
      }
    } catch (IOException e) {
      log.error("[{}] cannot list {}", site, vmsDir, e);
    }
    return changed;
  }

  private static List<String> afterCleanStop(Path dir, VmRecord record, Path clean)
      throws IOException {
    Map<String, Stamp> before;
    try {
      before = Json.MAPPER.readValue(clean.toFile(),
          Json.MAPPER.getTypeFactory().constructMapType(Map.class, String.class, Stamp.class));
    } catch (IOException e) {
      log.warn("{} unreadable ({}); judging as after a crash", clean, e.getMessage());
      return afterCrash(dir, record);
    }
    List<String> reasons = new ArrayList<>();
    for (VmRecord.DiskSpec d : record.disks()) {
      Stamp was = before.get(d.name());
      Stamp now = stamp(image(dir, d));
      if (was == null) {
        reasons.add(d.name() + " was not recorded at the last clean stop");
      } else if (!was.equals(now)) {
        reasons.add(d.name() + " changed since the agent stopped cleanly (" + describe(was, now)
            + ")");
      }
    }
    return reasons;
  }

  private static List<String> afterCrash(Path dir, VmRecord record) throws IOException {
    List<String> reasons = new ArrayList<>();
    for (VmRecord.DiskSpec d : record.disks()) {
      FileTime newestLog = newestLog(dir, d.name());
      Stamp image = stamp(image(dir, d));
      if (newestLog == null) {
        reasons.add(d.name() + " has no change log although it is protected");
        continue;
      }
      long lastTracked = newestLog.to(TimeUnit.NANOSECONDS);
      if (image.ctimeNanos() > lastTracked + CRASH_SLACK.toNanos()) {
        reasons.add(d.name() + " changed at " + instant(image.ctimeNanos())
            + ", after the last tracked write at " + instant(lastTracked)
            + " (the agent had not stopped cleanly)");
      }
    }
    return reasons;
  }

  /** Run after a clean stop: the disks are closed and no write can follow. */
  public static void recordCleanShutdown(Path dataDir, List<VmRecord> vms) {
    for (VmRecord record : vms) {
      if (record.protection() == null || record.role() != VmRecord.Role.PRIMARY) {
        continue;
      }
      Path dir = dataDir.resolve("vms").resolve(record.name());
      try {
        Map<String, Stamp> stamps = new LinkedHashMap<>();
        for (VmRecord.DiskSpec d : record.disks()) {
          stamps.put(d.name(), stamp(image(dir, d)));
        }
        Path tmp = dir.resolve(CLEAN_FILE + ".tmp");
        try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE,
            StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
          ch.write(ByteBuffer.wrap(Json.MAPPER.writeValueAsBytes(stamps)));
          ch.force(true);
        }
        Files.move(tmp, dir.resolve(CLEAN_FILE), StandardCopyOption.ATOMIC_MOVE,
            StandardCopyOption.REPLACE_EXISTING);
      } catch (IOException | RuntimeException e) {
        // Without the file the next start judges as after a crash, which is still sound.
        log.warn("cannot record the clean stop of {}: {}", record.name(), e.toString());
      }
    }
  }

  private static Path image(Path dir, VmRecord.DiskSpec d) {
    return dir.resolve(d.name() + ".img");
  }

  private static FileTime newestLog(Path dir, String disk) throws IOException {
    FileTime newest = null;
    try (Stream<Path> files = Files.list(dir)) {
      for (Path f : files.toList()) {
        if (HrlFormat.generationOf(disk, f.getFileName().toString()) >= 0) {
          FileTime t = Files.getLastModifiedTime(f);
          newest = newest == null || t.compareTo(newest) > 0 ? t : newest;
        }
      }
    }
    return newest;
  }

  static Stamp stamp(Path image) throws IOException {
    if (!Files.exists(image)) {
      return new Stamp(-1, 0, 0, "missing");
    }
    try {
      Map<String, Object> a = Files.readAttributes(image, "unix:size,lastModifiedTime,ctime,ino");
      return new Stamp((Long) a.get("size"), nanos(a.get("lastModifiedTime")),
          nanos(a.get("ctime")), String.valueOf(a.get("ino")));
    } catch (UnsupportedOperationException | IllegalArgumentException e) {
      // No unix attribute view (not Linux/macOS): size and modification time only.
      long mtime = Files.getLastModifiedTime(image).to(TimeUnit.NANOSECONDS);
      return new Stamp(Files.size(image), mtime, mtime, "");
    }
  }

  private static long nanos(Object fileTime) {
    return ((FileTime) fileTime).to(TimeUnit.NANOSECONDS);
  }

  private static Instant instant(long nanos) {
    return Instant.ofEpochSecond(0, nanos);
  }

  private static String describe(Stamp was, Stamp now) {
    List<String> parts = new ArrayList<>();
    if (was.size() != now.size()) {
      parts.add("size " + was.size() + " -> " + now.size());
    }
    if (was.mtimeNanos() != now.mtimeNanos()) {
      parts.add("modified " + instant(was.mtimeNanos()) + " -> " + instant(now.mtimeNanos()));
    }
    if (was.ctimeNanos() != now.ctimeNanos()) {
      parts.add("changed " + instant(was.ctimeNanos()) + " -> " + instant(now.ctimeNanos()));
    }
    if (!was.inode().equals(now.inode())) {
      parts.add("inode " + was.inode() + " -> " + now.inode());
    }
    return String.join(", ", parts);
  }
}
