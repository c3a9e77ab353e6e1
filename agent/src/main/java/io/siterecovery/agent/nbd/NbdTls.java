package io.siterecovery.agent.nbd;

import java.io.IOException;
import java.net.Socket;
import java.security.cert.X509Certificate;
import java.util.Objects;
import java.util.function.Predicate;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLSocket;

/**
 * NBD over TLS (NBD_OPT_STARTTLS) with client certificates. A server with this setting refuses
 * every option but STARTTLS and ABORT until TLS is up ("FORCEDTLS" in the NBD protocol).
 *
 * @param context the server's key and certificate, and the trust anchors that client
 *     certificates must chain to; a client without a trusted certificate fails the TLS handshake
 * @param clientAllowed decides, given the client's verified leaf certificate, whether this
 *     identity may use the server's disks
 */
public record NbdTls(SSLContext context, Predicate<X509Certificate> clientAllowed) {
  /**
   * TLS 1.3 only, like the agent's other channels (DESIGN.md, "Security"); the GnuTLS that QEMU and
   * libnbd use speaks it. The NBD protocol asks servers to support TLS 1.2 as well ("TLS versions"
   * in its doc/proto.md): add it here if a client too old for 1.3 must connect.
   */
  private static final String[] PROTOCOLS = {"TLSv1.3"};

  public NbdTls {
    Objects.requireNonNull(context, "context");
    Objects.requireNonNull(clientAllowed, "clientAllowed");
  }

  /** The client's leaf certificate was valid but {@link #clientAllowed} said no. */
  static final class ClientNotAllowedException extends IOException {
    ClientNotAllowedException(String subject) {
      super("client certificate " + subject + " is not allowed");
    }
  }

  /**
   * Runs the server side of the TLS handshake over a connection that just acknowledged STARTTLS
   * and checks the client's certificate. The caller bounds the time this takes.
   */
  SSLSocket accept(Socket plain) throws IOException {
    SSLSocket tls = (SSLSocket) context.getSocketFactory().createSocket(plain,
        plain.getInetAddress().getHostAddress(), plain.getPort(), true);
    tls.setUseClientMode(false);
    tls.setNeedClientAuth(true);
    tls.setEnabledProtocols(PROTOCOLS);
    tls.startHandshake();
    // TLS with a JSSE trust manager only ever verifies X.509 chains
    X509Certificate leaf = (X509Certificate) tls.getSession().getPeerCertificates()[0];
    if (!clientAllowed.test(leaf)) {
      throw new ClientNotAllowedException(leaf.getSubjectX500Principal().getName());
    }
    return tls;
  }
}
