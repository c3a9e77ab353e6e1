package io.siterecovery.agent.resync;

import com.fasterxml.jackson.annotation.JsonInclude;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.vm.Vm;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.SecureRandom;
import java.util.Map;
import java.util.TreeMap;

/**
 * The source's resync bookkeeping for one VM, in {@code <vm dir>/resync-source.json} beside
 * {@code vm.json} (kept out of the VM record on purpose): why a resync is required, and, while one
 * is under way, its generation and how far each disk has been compared. The file exists only while
 * there is something to say; completing a resync deletes it.
 */
public final class ResyncLedger {
  static final String FILE = "resync-source.json";
  private static final int MAX_REASON = 2000;
  private static final SecureRandom SEEDS = new SecureRandom();

  /**
   * {@code generation}: the resync under way (null: none). {@code seed}: the secret key of its
   * block digests, drawn at begin (null in a ledger written before digests were keyed: the next
   * step draws one). {@code resyncedBytes}: per disk, the prefix of the disk compared and repaired
   * by steps taken in order since the resync began. {@code completedGeneration}: the last
   * resync completed, so that a complete repeated by a retry (its first answer lost with a
   * worker) is answered again instead of refused.
   */
  @JsonInclude(JsonInclude.Include.NON_NULL)
  public record State(Long generation, Long seed, String requiredReason,
      Map<String, Long> resyncedBytes, Long completedGeneration) {
    static final State EMPTY = new State(null, null, null, Map.of(), null);

    public State {
      resyncedBytes = resyncedBytes == null ? Map.of() : Map.copyOf(resyncedBytes);
    }

    public boolean underWay() {
      return generation != null;
    }

    public long resynced(String disk) {
      return resyncedBytes.getOrDefault(disk, 0L);
    }
  }

  private ResyncLedger() {}

  public static State load(Vm vm) {
    return load(vm.dir());
  }

  public static synchronized State load(Path vmDir) {
    Path file = vmDir.resolve(FILE);
    try {
      if (!Files.exists(file)) {
        return State.EMPTY;
      }
      return Json.MAPPER.readValue(file.toFile(), State.class);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read " + file, e);
    }
  }

  /** Refuses a delta cycle while a resync is under way: its logs follow the resync's generation. */
  public static void requireNoResyncUnderWay(Vm vm) {
    State s = load(vm);
    if (s.underWay()) {
      throw new AgentException(ErrorCode.RESYNC_IN_PROGRESS, "VM " + vm.name()
          + " is being resynchronised to generation " + s.generation()
          + "; delta replication resumes once the resync completes");
    }
  }

  /**
   * Records why the replica needs a resync. A reason that arrives while a resync is under way
   * also resets its progress: the disks must be compared again from block 0.
   */
  public static void markRequired(Vm vm, String reason) {
    markRequired(vm.dir(), reason);
  }

  public static synchronized void markRequired(Path vmDir, String reason) {
    State s = load(vmDir);
    String reasons = s.requiredReason();
    if (reasons == null) {
      reasons = reason;
    } else if (!reasons.contains(reason) && reasons.length() < MAX_REASON) {
      reasons = reasons + "; " + reason;
    }
    save(vmDir, new State(s.generation(), s.seed(), reasons,
        s.underWay() ? Map.of() : s.resyncedBytes(), s.completedGeneration()));
  }

  /**
   * Records a resync begun at {@code generation}, with a new random seed for its digests (a
   * bucket's resync, which compares whole chunks, has no use for the seed).
   */
  public static synchronized State begin(Path vmDir, long generation) {
    State s = load(vmDir);
    State next = new State(generation, SEEDS.nextLong(), s.requiredReason(), Map.of(),
        s.completedGeneration());
    save(vmDir, next);
    return next;
  }

  /**
   * The seed of the resync under way at {@code generation}; a ledger from before digests were
   * keyed has none, and gets one now. Each step compares digests that both sides take with the
   * same seed within that step, so a resync whose first steps went unkeyed loses nothing.
   */
  static synchronized long seed(Path vmDir, long generation) {
    State s = load(vmDir);
    if (s.generation() == null || s.generation() != generation) {
      throw new AgentException(ErrorCode.INVALID_STATE, "the resync to generation " + generation
          + " was completed or replaced meanwhile");
    }
    if (s.seed() != null) {
      return s.seed();
    }
    long seed = SEEDS.nextLong();
    save(vmDir, new State(s.generation(), seed, s.requiredReason(), s.resyncedBytes(),
        s.completedGeneration()));
    return seed;
  }

  /**
   * Extends a disk's compared prefix with a step over {@code [from, to)}; a step that does not
   * start inside the prefix (a gap) leaves it as it is.
   */
  static synchronized void recordStep(Path vmDir, long generation, String disk, long from, long to) {
    State s = load(vmDir);
    if (s.generation() == null || s.generation() != generation) {
      return; // completed or restarted meanwhile
    }
    long done = s.resynced(disk);
    if (from <= done && to > done) {
      Map<String, Long> next = new TreeMap<>(s.resyncedBytes());
      next.put(disk, to);
      save(vmDir, new State(s.generation(), s.seed(), s.requiredReason(), next,
          s.completedGeneration()));
    }
  }

  /** Ends the resync under way: nothing is required or under way, its generation remembered. */
  public static synchronized void completed(Path vmDir, long generation) {
    save(vmDir, new State(null, null, null, Map.of(), generation));
  }

  public static synchronized void clear(Path vmDir) {
    try {
      Files.deleteIfExists(vmDir.resolve(FILE));
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  private static void save(Path vmDir, State state) {
    Path tmp = vmDir.resolve(FILE + ".tmp");
    try {
      byte[] json = Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(state);
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE,
          StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE)) {
        ch.write(ByteBuffer.wrap(json));
        ch.force(true);
      }
      Files.move(tmp, vmDir.resolve(FILE), StandardCopyOption.ATOMIC_MOVE,
          StandardCopyOption.REPLACE_EXISTING);
    } catch (IOException e) {
      throw new UncheckedIOException("cannot write " + vmDir.resolve(FILE), e);
    }
  }
}
