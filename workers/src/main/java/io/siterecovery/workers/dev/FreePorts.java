package io.siterecovery.workers.dev;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.Set;
import java.util.concurrent.ThreadLocalRandom;

/**
 * Ports for processes that are told theirs before they start (agents, the Temporal server, a
 * worker's HTTPS endpoint), when the one choosing cannot let them bind port 0 and ask.
 *
 * <p>Why not {@code new ServerSocket(0)}: that port comes from the kernel's ephemeral range, the
 * same range every outgoing connection takes its local port from. Between closing the probe and
 * the process binding it, a connection of the Temporal server or a worker could take it, and an
 * agent then failed with "Failed to bind" (seen in CI). Ports below the ephemeral range are never
 * handed to outgoing connections, so only another listener can take one, and each is probed.
 */
public final class FreePorts {
  private static final int LOWEST = 10_000;
  /** Linux's default start of the ephemeral range, when /proc does not say. */
  private static final int EPHEMERAL_START = 32_768;
  private static final Path EPHEMERAL_RANGE = Path.of("/proc/sys/net/ipv4/ip_local_port_range");
  private static final int ATTEMPTS = 1_000;
  /** Never the same port twice in one process, even if the first holder has not bound it yet. */
  private static final Set<Integer> GIVEN = new HashSet<>();

  private FreePorts() {}

  /** A port on the loopback address that nothing listens on and no outgoing connection takes. */
  public static synchronized int next() {
    int below = ephemeralStart();
    for (int i = 0; i < ATTEMPTS; i++) {
      int port = ThreadLocalRandom.current().nextInt(LOWEST, below);
      if (!GIVEN.contains(port) && bindable(port)) {
        GIVEN.add(port);
        return port;
      }
    }
    throw new IllegalStateException("no free port between " + LOWEST + " and " + below
        + " after " + ATTEMPTS + " tries");
  }

  private static boolean bindable(int port) {
    try (ServerSocket probe = new ServerSocket(port, 1, InetAddress.getLoopbackAddress())) {
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  private static int ephemeralStart() {
    try {
      int start = Integer.parseInt(Files.readString(EPHEMERAL_RANGE).trim().split("\\s+")[0]);
      // A range that starts low leaves no room below it; then the default start is as good as
      // any, and the probe still refuses a port in use.
      return start > LOWEST + 1_000 ? start : EPHEMERAL_START;
    } catch (IOException | NumberFormatException e) {
      return EPHEMERAL_START; // not Linux, or an unreadable /proc: the usual range
    }
  }
}
