package io.siterecovery.agent.testing;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManagerFactory;

/**
 * TLS clients built from PEM files with the JDK alone (not with the agent's own
 * {@code TlsCredentials}), so that a test can present any certificate it likes: one from another
 * CA, an expired one, one made by {@code openssl}, or none at all.
 */
public final class TlsProbe {
  private TlsProbe() {}

  /** What a raw exchange got: the bytes the server answered, or how the connection failed. */
  public record Answer(String text, IOException failure) {
    public boolean answered() {
      return failure == null && !text.isEmpty();
    }

    @Override
    public String toString() {
      return failure != null ? "failed: " + failure : "answered: " + text;
    }
  }

  /**
   * A TLS 1.3 client context trusting only {@code trustedCa}, presenting {@code cert} with
   * {@code key} (both PEM; null for no client certificate).
   */
  public static SSLContext context(Path cert, Path key, Path trustedCa) {
    try {
      KeyManager[] keyManagers = null;
      if (cert != null) {
        KeyStore keys = KeyStore.getInstance("PKCS12");
        keys.load(null, null);
        keys.setKeyEntry("client", privateKey(key), new char[0],
            certificates(cert).toArray(Certificate[]::new));
        KeyManagerFactory kmf =
            KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(keys, new char[0]);
        keyManagers = kmf.getKeyManagers();
      }
      KeyStore anchors = KeyStore.getInstance("PKCS12");
      anchors.load(null, null);
      anchors.setCertificateEntry("ca", certificates(trustedCa).get(0));
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(anchors);
      SSLContext context = SSLContext.getInstance("TLSv1.3");
      context.init(keyManagers, tmf.getTrustManagers(), new SecureRandom());
      return context;
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot build a TLS context: " + e, e);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
  }

  /** Connects over TLS and completes the client's side of the handshake. */
  public static SSLSocket connect(SSLContext context, int port, Duration readTimeout)
      throws IOException {
    Socket plain = new Socket();
    plain.connect(new InetSocketAddress("127.0.0.1", port), 10_000);
    SSLSocket socket = (SSLSocket) context.getSocketFactory()
        .createSocket(plain, "127.0.0.1", port, true);
    socket.setEnabledProtocols(new String[] {"TLSv1.3"});
    socket.setSoTimeout((int) readTimeout.toMillis());
    socket.startHandshake();
    return socket;
  }

  /**
   * Sends {@code request} (raw HTTP/1.1) over TLS and reads the answer until the server closes
   * the connection; a refused handshake, an alert or a reset is returned as the failure.
   */
  public static Answer exchange(SSLContext context, int port, String request) {
    try (SSLSocket socket = connect(context, port, Duration.ofSeconds(20))) {
      socket.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
      socket.getOutputStream().flush();
      return new Answer(readAll(socket.getInputStream()), null);
    } catch (IOException e) {
      return new Answer("", e);
    }
  }

  /**
   * What a streamed request got: the answer (status line, headers, body) or the failure that
   * ended the reading, when the first byte of it came, and how much of the body had been sent
   * by then and in all.
   */
  public record Streamed(String answer, IOException failure, Duration timeToAnswer,
      long bodyBytesAtAnswer, long bodyBytesSent) {
    public int status() {
      return answer.startsWith("HTTP/1.1 ") && answer.length() >= 12
          ? Integer.parseInt(answer.substring(9, 12)) : 0;
    }

    public String body() {
      int at = answer.indexOf("\r\n\r\n");
      return at < 0 ? "" : answer.substring(at + 4);
    }

    @Override
    public String toString() {
      return (failure != null ? "failed: " + failure + "; " : "") + "answer after "
          + timeToAnswer.toMillis() + " ms with " + bodyBytesAtAnswer + " body bytes sent ("
          + bodyBytesSent + " in all): " + answer;
    }
  }

  /**
   * Sends {@code head} (request line and headers, ending with the blank line), then
   * {@code body} from a thread of its own, chunked if {@code chunked}, while this thread reads
   * the answer: unlike java.net.http, a server that answers before the body is all sent is
   * heard. Stops sending once the answer is complete or the server closes.
   */
  public static Streamed stream(SSLContext context, int port, String head, InputStream body,
      boolean chunked, Duration readTimeout) throws IOException {
    java.util.concurrent.atomic.AtomicLong sent = new java.util.concurrent.atomic.AtomicLong();
    java.util.concurrent.atomic.AtomicBoolean stop = new java.util.concurrent.atomic.AtomicBoolean();
    long start = System.nanoTime();
    try (SSLSocket socket = connect(context, port, readTimeout)) {
      Thread writer = new Thread(() -> {
        try {
          java.io.OutputStream out = socket.getOutputStream();
          out.write(head.getBytes(StandardCharsets.US_ASCII));
          byte[] buffer = new byte[64 << 10];
          for (int n = body.read(buffer); n >= 0 && !stop.get(); n = body.read(buffer)) {
            if (chunked) {
              out.write((Integer.toHexString(n) + "\r\n").getBytes(StandardCharsets.US_ASCII));
            }
            out.write(buffer, 0, n);
            if (chunked) {
              out.write("\r\n".getBytes(StandardCharsets.US_ASCII));
            }
            sent.addAndGet(n);
          }
          if (chunked && !stop.get()) {
            out.write("0\r\n\r\n".getBytes(StandardCharsets.US_ASCII));
          }
          out.flush();
        } catch (IOException e) {
          // the server closed while we were sending: what it answered is read below
        }
      }, "tls-probe-writer");
      writer.setDaemon(true);
      writer.start();
      ByteArrayOutputStream answer = new ByteArrayOutputStream();
      IOException failure = null;
      long firstByte = -1;
      long sentAtAnswer = -1;
      try {
        InputStream in = socket.getInputStream();
        byte[] buffer = new byte[8192];
        for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
          if (firstByte < 0) {
            firstByte = System.nanoTime();
            sentAtAnswer = sent.get();
          }
          answer.write(buffer, 0, n);
          if (complete(answer.toString(StandardCharsets.UTF_8))) {
            break;
          }
        }
      } catch (IOException e) {
        failure = e;
      }
      stop.set(true);
      socket.close();
      try {
        writer.join(30_000);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      long end = firstByte < 0 ? System.nanoTime() : firstByte;
      return new Streamed(answer.toString(StandardCharsets.UTF_8), failure,
          Duration.ofNanos(end - start), sentAtAnswer < 0 ? sent.get() : sentAtAnswer, sent.get());
    }
  }

  /** Whether {@code text} holds a whole answer with a Content-Length. */
  private static boolean complete(String text) {
    int end = text.indexOf("\r\n\r\n");
    if (end < 0) {
      return false;
    }
    java.util.regex.Matcher length = java.util.regex.Pattern
        .compile("(?im)^content-length:\\s*([0-9]+)").matcher(text.substring(0, end));
    return length.find() && text.length() - end - 4 >= Integer.parseInt(length.group(1));
  }

  /** A GET that asks the server to close the connection after answering. */
  public static String get(String path) {
    return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  }

  public static String readAll(InputStream in) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream();
    byte[] buffer = new byte[8192];
    for (int n = in.read(buffer); n >= 0; n = in.read(buffer)) {
      out.write(buffer, 0, n);
    }
    return out.toString(StandardCharsets.UTF_8);
  }

  public static List<Certificate> certificates(Path pem) throws IOException {
    try (InputStream in = Files.newInputStream(pem)) {
      return new ArrayList<>(CertificateFactory.getInstance("X.509").generateCertificates(in));
    } catch (GeneralSecurityException e) {
      throw new IOException(pem + ": " + e, e);
    }
  }

  /** An EC private key in PKCS#8 PEM ({@code BEGIN PRIVATE KEY}), as the CA and openssl write. */
  public static PrivateKey privateKey(Path pem) throws IOException {
    String text = Files.readString(pem, StandardCharsets.US_ASCII);
    int begin = text.indexOf("-----BEGIN PRIVATE KEY-----");
    int end = text.indexOf("-----END PRIVATE KEY-----");
    if (begin < 0 || end < 0) {
      throw new IOException(pem + " holds no PKCS#8 private key");
    }
    byte[] der = Base64.getMimeDecoder().decode(
        text.substring(begin + "-----BEGIN PRIVATE KEY-----".length(), end));
    try {
      return KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(der));
    } catch (GeneralSecurityException e) {
      throw new IOException(pem + ": " + e, e);
    }
  }
}
