package io.siterecovery.workers.chaos;

import java.io.Closeable;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The link between the two agents: a loopback TCP proxy that the source agent's peer URL for
 * the target points at. It forwards bytes as they come, and on command it
 * <ul>
 *   <li>{@link #cut()}: stops moving bytes on every connection and holds new ones accepted but
 *       unanswered, as a link that drops every packet does; {@link #heal()} lets them all go on
 *       (TCP survives a short cut);</li>
 *   <li>{@link #silence()}: the same, but what was held stays silent for good after
 *       {@link #heal()} (a peer that accepts connections and never answers); only new
 *       connections pass;</li>
 *   <li>{@link #resetAll()}: closes every connection with a TCP RST;</li>
 *   <li>{@link #throttle(long)}: at most that many bytes per second each way.</li>
 * </ul>
 * The agents' TLS runs through it end to end: the proxy sees ciphertext only, and the source
 * checks the target's certificate identity, not its address, so nothing else changes.
 */
final class LinkProxy implements Closeable {
  private final ServerSocket server;
  private final InetSocketAddress upstream;
  private final List<Pipe> pipes = new CopyOnWriteArrayList<>();
  private final Object gate = new Object();
  private boolean blocked;
  private boolean closed;
  private boolean silent;
  private volatile long bytesPerSecond;
  private final AtomicLong forwarded = new AtomicLong();

  LinkProxy(int upstreamPort) throws IOException {
    this.upstream = new InetSocketAddress(InetAddress.getLoopbackAddress(), upstreamPort);
    this.server = new ServerSocket(0, 256, InetAddress.getLoopbackAddress());
    Thread accept = new Thread(this::acceptLoop, "link-proxy-accept");
    accept.setDaemon(true);
    accept.start();
  }

  int port() {
    return server.getLocalPort();
  }

  /** Bytes forwarded from the source agent to the target agent since the start. */
  long bytesToTarget() {
    return forwarded.get();
  }

  void cut() {
    synchronized (gate) {
      blocked = true;
      silent = false;
    }
  }

  void silence() {
    synchronized (gate) {
      blocked = true;
      silent = true;
      for (Pipe p : pipes) { // a hung peer answers nothing more on what it had open either
        p.silenced = true;
      }
    }
  }

  void heal() {
    synchronized (gate) {
      blocked = false;
      gate.notifyAll();
    }
  }

  void throttle(long bytesPerSecond) {
    this.bytesPerSecond = bytesPerSecond;
  }

  void resetAll() {
    for (Pipe p : pipes) {
      p.reset();
    }
  }

  private void acceptLoop() {
    while (!server.isClosed()) {
      try {
        Socket client = server.accept();
        Thread t = new Thread(() -> connect(client), "link-proxy-conn");
        t.setDaemon(true);
        t.start();
      } catch (IOException e) {
        return; // closed
      }
    }
  }

  private void connect(Socket client) {
    Pipe pipe = new Pipe(client);
    pipes.add(pipe);
    try {
      await(pipe); // a connection made during a cut waits for the link
      Socket target = new Socket();
      target.connect(upstream, 10_000);
      pipe.target = target;
      pipe.start(client.getInputStream(), target.getOutputStream(), true);
      pipe.start(target.getInputStream(), client.getOutputStream(), false);
    } catch (IOException | InterruptedException e) {
      pipe.reset();
    }
  }

  /**
   * Returns when bytes may move on {@code pipe}. A pipe caught by a silence never moves again;
   * its threads leave at {@link #close()}.
   */
  private void await(Pipe pipe) throws InterruptedException {
    synchronized (gate) {
      while (true) {
        if (closed) {
          throw new InterruptedException("proxy closed");
        }
        if (!pipe.silenced && !blocked) {
          return;
        }
        if (blocked && silent) {
          pipe.silenced = true;
        }
        gate.wait();
      }
    }
  }

  private final class Pipe {
    final Socket client;
    volatile Socket target;
    boolean silenced; // guarded by gate

    Pipe(Socket client) {
      this.client = client;
    }

    void start(InputStream in, OutputStream out, boolean toTarget) {
      Thread t = new Thread(() -> pump(in, out, toTarget), "link-proxy-pump");
      t.setDaemon(true);
      t.start();
    }

    private void pump(InputStream in, OutputStream out, boolean toTarget) {
      byte[] buf = new byte[64 * 1024];
      try {
        for (int n; (n = in.read(buf)) > 0; ) {
          await(this);
          long rate = bytesPerSecond;
          if (rate > 0) { // a rate limit, not synchronisation: the link is this slow
            Thread.sleep(Math.max(1, n * 1000L / rate));
          }
          out.write(buf, 0, n);
          out.flush();
          if (toTarget) {
            forwarded.addAndGet(n);
          }
        }
        reset();
      } catch (IOException | InterruptedException e) {
        reset();
      }
    }

    void reset() {
      pipes.remove(this);
      for (Socket s : new Socket[] {client, target}) {
        if (s != null) {
          try {
            s.setSoLinger(true, 0); // close with RST, as a broken link or a dead peer does
            s.close();
          } catch (IOException ignored) {
            // already gone
          }
        }
      }
    }
  }

  @Override
  public void close() throws IOException {
    server.close();
    synchronized (gate) {
      closed = true;
      gate.notifyAll();
    }
    resetAll();
  }
}
