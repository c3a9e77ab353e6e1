package io.siterecovery.agent.security;

import java.io.IOException;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.CertificateException;
import java.security.cert.X509Certificate;
import java.util.List;
import java.util.Optional;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLEngine;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedTrustManager;
import javax.net.ssl.X509TrustManager;

/**
 * One identity's TLS material: its certificate and key, and the deployment CA as the only trust
 * anchor. Peers are trusted for who their certificate says they are (its {@link Identity}), not
 * for a host name: agents move between addresses, identities do not.
 */
public final class TlsCredentials {
  public static final String PROTOCOL = "TLSv1.3";
  /**
   * AES-128-GCM first: with AES-NI it is about a third cheaper per byte than AES-256-GCM, which
   * the JDK prefers by default, and a disk copy is bound by this CPU on both agents.
   */
  public static final String[] CIPHER_SUITES = {"TLS_AES_128_GCM_SHA256",
      "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"};

  private final Identity identity;
  private final X509Certificate[] chain;
  private final PrivateKey key;
  private final X509Certificate ca;

  private TlsCredentials(Identity identity, X509Certificate[] chain, PrivateKey key,
      X509Certificate ca) {
    this.identity = identity;
    this.chain = chain;
    this.key = key;
    this.ca = ca;
  }

  /** Loads {@code identity}'s certificate and key and the CA certificate from {@code dir}. */
  public static TlsCredentials load(Path dir, Identity identity) throws IOException {
    Path cert = dir.resolve(identity.fileStem() + ".pem");
    Path key = dir.resolve(identity.fileStem() + "-key.pem");
    Path ca = dir.resolve(CertificateAuthority.CA_CERT);
    for (Path p : List.of(cert, key, ca)) {
      if (!Files.isRegularFile(p)) {
        throw new IOException("missing " + p + ": issue it with 'site-recovery certs issue --dir "
            + dir + " " + identity + "' (or 'certs init' for a new deployment)");
      }
    }
    List<X509Certificate> certs = Pem.readCertificates(cert);
    X509Certificate leaf = certs.get(0);
    Optional<Identity> named = Identity.of(leaf);
    if (named.isEmpty() || !named.get().equals(identity)) {
      throw new IOException(cert + " is not a certificate for " + identity + " (it names "
          + named.map(Identity::toString).orElse("no identity") + ")");
    }
    return new TlsCredentials(identity, certs.toArray(X509Certificate[]::new),
        Pem.readPrivateKey(key), Pem.readCertificates(ca).get(0));
  }

  public Identity identity() {
    return identity;
  }

  public X509Certificate caCertificate() {
    return ca;
  }

  /** For servers: any client with a valid certificate from the CA that names an identity. */
  public SSLContext serverContext() {
    return context(new IdentityTrustManager(trustAnchors(), null));
  }

  /** For clients: the server must present a valid certificate for {@code expectedPeer}. */
  public SSLContext clientContext(Identity expectedPeer) {
    return context(new IdentityTrustManager(trustAnchors(), expectedPeer));
  }

  private SSLContext context(TrustManager trust) {
    try {
      KeyStore keys = KeyStore.getInstance("PKCS12");
      keys.load(null, null);
      char[] none = new char[0];
      keys.setKeyEntry("identity", key, none, chain);
      KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(keys, none);
      SSLContext context = SSLContext.getInstance(PROTOCOL);
      context.init(kmf.getKeyManagers(), new TrustManager[] {trust}, new SecureRandom());
      return context;
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException("cannot build a TLS context for " + identity + ": "
          + e.getMessage(), e);
    }
  }

  private X509TrustManager trustAnchors() {
    try {
      KeyStore anchors = KeyStore.getInstance("PKCS12");
      anchors.load(null, null);
      anchors.setCertificateEntry("ca", ca);
      TrustManagerFactory tmf = TrustManagerFactory.getInstance("PKIX");
      tmf.init(anchors);
      for (TrustManager tm : tmf.getTrustManagers()) {
        if (tm instanceof X509TrustManager x) {
          return x;
        }
      }
      throw new IllegalStateException("no X.509 trust manager");
    } catch (GeneralSecurityException | IOException e) {
      throw new IllegalStateException("cannot load the CA as a trust anchor: " + e.getMessage(), e);
    }
  }

  /**
   * Checks the chain against the CA (signature, validity dates, key usage), then the identity in
   * the leaf. Host names are deliberately not checked: the identity is what is authorized.
   */
  static final class IdentityTrustManager extends X509ExtendedTrustManager {
    private final X509TrustManager pkix;
    private final Identity expectedServer;

    IdentityTrustManager(X509TrustManager pkix, Identity expectedServer) {
      this.pkix = pkix;
      this.expectedServer = expectedServer;
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType)
        throws CertificateException {
      pkix.checkClientTrusted(chain, authType);
      if (Identity.of(chain[0]).isEmpty()) {
        throw new CertificateException("client certificate " + chain[0].getSubjectX500Principal()
            + " names no site-recovery identity");
      }
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType)
        throws CertificateException {
      pkix.checkServerTrusted(chain, authType);
      Optional<Identity> named = Identity.of(chain[0]);
      if (expectedServer != null && !named.equals(Optional.of(expectedServer))) {
        throw new CertificateException("expected " + expectedServer + " at the other end, but its"
            + " certificate is for " + named.map(Identity::toString).orElse("no identity"));
      }
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, Socket socket)
        throws CertificateException {
      checkClientTrusted(chain, authType);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, Socket socket)
        throws CertificateException {
      checkServerTrusted(chain, authType);
    }

    @Override
    public void checkClientTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
        throws CertificateException {
      checkClientTrusted(chain, authType);
    }

    @Override
    public void checkServerTrusted(X509Certificate[] chain, String authType, SSLEngine engine)
        throws CertificateException {
      checkServerTrusted(chain, authType);
    }

    @Override
    public X509Certificate[] getAcceptedIssuers() {
      return pkix.getAcceptedIssuers();
    }
  }
}
