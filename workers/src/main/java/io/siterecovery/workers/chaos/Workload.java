package io.siterecovery.workers.chaos;

import io.siterecovery.agent.nbd.NbdClient;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntSupplier;

/**
 * The VM's writes: 64 KiB blocks through the source agent's NBD export, each with FUA, each
 * with content derived from a seed so that it can be regenerated. A block counts as written only
 * once the agent acknowledged it; until then the writer retries the same block with the same
 * bytes (reconnecting across an agent restart), so what the disk must hold is always known
 * exactly: {@link #lostBlocks(Path)} reads an image file and counts the blocks that do not.
 */
final class Workload implements AutoCloseable {
  static final int BLOCK = 64 * 1024;

  private final String export;
  private final IntSupplier nbdPort;
  private final long blocks;
  private final Random random;
  /** Block index to the seed of its acknowledged content. */
  private final Map<Long, Long> expected = new ConcurrentHashMap<>();
  private final AtomicLong acknowledged = new AtomicLong();
  private final AtomicLong failures = new AtomicLong();
  private final Object pauseLock = new Object();
  private volatile boolean paused = true;
  private boolean idle = true; // guarded by pauseLock
  private volatile boolean stopped;
  private final long writesPerSecond;
  private Thread thread;

  /** {@code nbdPort} is asked at each reconnection: a restarted agent keeps its port anyway. */
  Workload(String export, IntSupplier nbdPort, long diskBytes, long seed, long writesPerSecond) {
    this.export = export;
    this.nbdPort = nbdPort;
    this.blocks = diskBytes / BLOCK;
    this.random = new Random(seed);
    this.writesPerSecond = writesPerSecond;
  }

  /** Fills the first {@code bytes} of the disk, sequentially, before protection starts. */
  void prefill(long bytes) throws IOException {
    try (NbdClient nbd = new NbdClient("127.0.0.1", nbdPort.getAsInt(), export)) {
      for (long b = 0; b < bytes / BLOCK; b++) {
        long seed = random.nextLong();
        nbd.write(b * BLOCK, content(seed), false);
        expected.put(b, seed);
      }
      nbd.flush();
      acknowledged.addAndGet(bytes / BLOCK);
    }
  }

  /** Starts the writer thread, paused until {@link #resume()}. */
  void start() {
    thread = new Thread(this::loop, "chaos-writer-" + export);
    thread.setDaemon(true);
    thread.start();
  }

  void resume() {
    synchronized (pauseLock) {
      paused = false;
      pauseLock.notifyAll();
    }
  }

  /** Returns once no write is in flight: every write made so far was acknowledged. */
  void pause() throws InterruptedException {
    synchronized (pauseLock) {
      paused = true;
      while (!idle && !stopped) {
        pauseLock.wait(1000);
      }
    }
  }

  long acknowledgedWrites() {
    return acknowledged.get();
  }

  long failedAttempts() {
    return failures.get();
  }

  private void loop() {
    NbdClient nbd = null;
    long pending = -1;
    long pendingSeed = 0;
    long interval = 1_000_000_000L / writesPerSecond;
    while (!stopped) {
      synchronized (pauseLock) {
        while (paused && pending < 0 && !stopped) {
          idle = true;
          pauseLock.notifyAll();
          try {
            pauseLock.wait();
          } catch (InterruptedException e) {
            return;
          }
        }
        idle = false;
      }
      if (pending < 0) {
        pending = Math.floorMod(random.nextLong(), blocks);
        pendingSeed = random.nextLong();
      }
      try {
        if (nbd == null) {
          nbd = new NbdClient("127.0.0.1", nbdPort.getAsInt(), export);
        }
        nbd.write(pending * BLOCK, content(pendingSeed), true);
        expected.put(pending, pendingSeed);
        acknowledged.incrementAndGet();
        pending = -1;
        LockSupport.parkNanos(interval); // the workload's pace, not a wait for anything
      } catch (IOException e) {
        // Not acknowledged: the same bytes go to the same block again once the agent answers.
        failures.incrementAndGet();
        closeQuietly(nbd);
        nbd = null;
        LockSupport.parkNanos(Duration.ofMillis(200).toNanos());
      }
    }
    closeQuietly(nbd);
  }

  /** Blocks of {@code image} that do not hold their last acknowledged content. */
  long lostBlocks(Path image) throws IOException {
    long lost = 0;
    try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
      ByteBuffer buf = ByteBuffer.allocate(BLOCK);
      for (Map.Entry<Long, Long> e : expected.entrySet()) {
        buf.clear();
        long pos = e.getKey() * BLOCK;
        while (buf.hasRemaining() && ch.read(buf, pos + buf.position()) > 0) {
          // read the whole block
        }
        if (buf.flip().mismatch(ByteBuffer.wrap(content(e.getValue()))) >= 0) {
          lost++;
        }
      }
    }
    return lost;
  }

  static byte[] content(long seed) {
    byte[] b = new byte[BLOCK];
    new Random(seed).nextBytes(b);
    return b;
  }

  private static void closeQuietly(NbdClient nbd) {
    if (nbd != null) {
      try {
        nbd.close();
      } catch (IOException | RuntimeException ignored) {
        // the connection is gone already
      }
    }
  }

  @Override
  public void close() throws InterruptedException {
    stopped = true;
    synchronized (pauseLock) {
      pauseLock.notifyAll();
    }
    if (thread != null) {
      thread.join(10_000);
    }
  }
}
