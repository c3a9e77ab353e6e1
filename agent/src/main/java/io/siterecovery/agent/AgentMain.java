package io.siterecovery.agent;

import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.security.TlsCredentials;
import java.io.IOException;
import java.nio.file.Path;

/**
 * Runs one host agent as its own process: {@code --site NAME --data DIR --certs DIR
 * [--peer SITE=URL]... [--bind HOST] [--http PORT] [--nbd PORT] [--nbd-bind HOST]
 * [--nbd-tls true] [--scripts DIR]}; {@code --certs} holds
 * {@code ca.pem} and this site's {@code site-<name>.pem} with its key. When both listeners
 * are up it prints one line {@code READY <httpPort> <nbdPort>} to stdout, then runs until it is
 * stopped (SIGTERM closes it cleanly, the process exiting only once the disks are flushed and the
 * clean-shutdown stamp is written; SIGKILL is what the crash tests use).
 */
public final class AgentMain {
  private AgentMain() {}

  public static void main(String[] args) throws IOException, InterruptedException {
    String site = null;
    Path data = null;
    String bind = "127.0.0.1";
    int http = 0;
    int nbd = 0;
    Path certs = null;
    String nbdBind = HostAgent.Settings.LOOPBACK;
    boolean nbdTls = false;
    Path scripts = null;
    java.util.Map<String, String> peers = new java.util.LinkedHashMap<>();
    java.util.Map<String, io.siterecovery.agent.objectstore.ship.ObjectStoreSite> objectStores =
        new java.util.LinkedHashMap<>();
    for (int i = 0; i < args.length; i++) {
      String flag = args[i];
      if (i + 1 >= args.length) {
        usage("missing value after " + flag);
      }
      String value = args[++i];
      switch (flag) {
        case "--site" -> site = value;
        case "--data" -> data = Path.of(value);
        case "--bind" -> bind = value;
        case "--http" -> http = port(flag, value);
        case "--nbd" -> nbd = port(flag, value);
        case "--certs" -> certs = Path.of(value);
        case "--nbd-bind" -> nbdBind = value;
        case "--nbd-tls" -> nbdTls = Boolean.parseBoolean(value);
        case "--scripts" -> scripts = Path.of(value);
        case "--peer" -> {
          int eq = value.indexOf('=');
          if (eq <= 0) {
            usage("--peer takes SITE=URL, e.g. secondary=https://10.1.0.5:8701");
          }
          peers.put(value.substring(0, eq), value.substring(eq + 1));
        }
        case "--object-store" -> {
          int eq = value.indexOf('=');
          if (eq <= 0) {
            usage("--object-store takes SITE=FILE, e.g. cloud=/etc/site-recovery/cloud.json");
          }
          String name = value.substring(0, eq);
          try {
            objectStores.put(name, io.siterecovery.agent.objectstore.ship.ObjectStoreSite.load(
                name, Path.of(value.substring(eq + 1))));
          } catch (IllegalArgumentException e) {
            usage(e.getMessage());
          }
        }
        default -> usage("unknown option " + flag);
      }
    }
    if (site == null || data == null || certs == null) {
      usage("--site, --data and --certs are required");
    }
    try (StopSignal stop = StopSignal.install("agent", StopSignal.DEFAULT_BOUND);
        HostAgent agent = new HostAgent(new HostAgent.Settings(site, data, bind, http, nbd,
            TlsCredentials.load(certs, Identity.site(site)), peers, nbdBind, nbdTls, null,
            scripts, objectStores))) {
      System.out.println("READY " + agent.httpPort() + " " + agent.nbdPort());
      System.out.flush();
      stop.await();
    }
  }

  private static int port(String flag, String value) {
    try {
      int port = Integer.parseInt(value);
      if (port < 0 || port > 65535) {
        usage(flag + " must be a port number (0 picks a free port)");
      }
      return port;
    } catch (NumberFormatException e) {
      usage(flag + " must be a port number, not '" + value + "'");
      return -1;
    }
  }

  private static void usage(String problem) {
    System.err.println("agent: " + problem);
    System.err.println("usage: AgentMain --site NAME --data DIR --certs DIR [--peer SITE=URL]..."
        + " [--bind HOST] [--http PORT] [--nbd PORT] [--nbd-bind HOST] [--nbd-tls true]"
        + " [--scripts DIR] [--object-store SITE=FILE]...");
    System.exit(2);
  }
}
