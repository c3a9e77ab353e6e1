package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.nbd.NbdProtocol.*;
import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.run;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.disk.VirtualDisk;
import io.siterecovery.agent.testing.Tools;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.Principal;
import java.security.PrivateKey;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.time.Duration;
import java.util.List;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.CopyOnWriteArrayList;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.TrustManagerFactory;
import javax.net.ssl.X509ExtendedKeyManager;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * NBD STARTTLS with client certificates, against clients we did not write: libnbd's nbdinfo and
 * QEMU (both GnuTLS). The certificates come from the openssl command line, an independent oracle
 * for what a deployment CA would issue.
 */
class NbdStartTlsTest {
  private static final long SIZE = 16L << 20;
  private static final String ALLOWED_CLIENT = "CN=nbd-client";
  private static final String PASSWORD = "changeit";

  @TempDir static Path certs;

  @TempDir Path tmp;
  private VirtualDisk disk;
  private NbdServer server;
  /** Subjects the server's clientAllowed was asked about, in order. */
  private final List<String> askedAbout = new CopyOnWriteArrayList<>();

  /**
   * A CA with a server certificate (SAN IP:127.0.0.1, DNS:localhost) and two client certificates,
   * one of them for an identity the server does not allow, and a second CA with a client
   * certificate of its own. Client directories use the GnuTLS/QEMU layout: ca-cert.pem,
   * client-cert.pem, client-key.pem.
   */
  @BeforeAll
  static void issueCertificates() throws IOException {
    assumeInstalled("openssl");
    ca("ca");
    ca("other-ca");
    leaf("server", "ca", "localhost",
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
            + "keyUsage=critical,digitalSignature,keyEncipherment\n");
    String clientExtensions =
        "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n";
    leaf("client", "ca", "nbd-client", clientExtensions);
    leaf("someone-else", "ca", "someone-else", clientExtensions);
    leaf("stranger", "other-ca", "nbd-client", clientExtensions);
    openssl("pkcs12", "-export", "-in", "server-cert.pem", "-inkey", "server-key.pem",
        "-certfile", "ca-cert.pem", "-out", "server.p12", "-passout", "pass:" + PASSWORD);
    for (String client : List.of("client", "someone-else", "stranger")) {
      openssl("pkcs12", "-export", "-in", client + "-cert.pem", "-inkey", client + "-key.pem",
          "-out", client + ".p12", "-passout", "pass:" + PASSWORD);
      Path dir = Files.createDirectories(certs.resolve("gnutls-" + client));
      Files.copy(certs.resolve("ca-cert.pem"), dir.resolve("ca-cert.pem"));
      Files.copy(certs.resolve(client + "-cert.pem"), dir.resolve("client-cert.pem"));
      Files.copy(certs.resolve(client + "-key.pem"), dir.resolve("client-key.pem"));
    }
    Path noCertificate = Files.createDirectories(certs.resolve("gnutls-no-certificate"));
    Files.copy(certs.resolve("ca-cert.pem"), noCertificate.resolve("ca-cert.pem"));
  }

  private static void ca(String name) {
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", name + "-key.pem", "-out", name + "-cert.pem", "-days", "2", "-subj",
        "/CN=" + name, "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign");
  }

  private static void leaf(String name, String ca, String commonName, String extensions)
      throws IOException {
    Files.writeString(certs.resolve(name + ".ext"), extensions);
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", name + "-key.pem", "-out", name + ".csr", "-subj", "/CN=" + commonName);
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + "-cert.pem", "-CAkey",
        ca + "-key.pem", "-set_serial", Long.toString(System.nanoTime()), "-days", "2",
        "-extfile", name + ".ext", "-out", name + "-cert.pem");
  }

  private static void openssl(String... args) {
    List<String> command = new java.util.ArrayList<>(List.of("openssl"));
    command.addAll(List.of(args));
    Tools.run(Tools.DEFAULT_TIMEOUT, command, certs).assertOk();
  }

  /** Trust anchors: the first CA; keys: {@code keys}.p12, or none. */
  private static SSLContext context(String keys) throws IOException, GeneralSecurityException {
    return context(keys, false, "TLS");
  }

  /**
   * @param presentAnyway send the client certificate even when the server's list of acceptable
   *     CAs does not name its issuer (JSSE and GnuTLS clients then send none), so that the
   *     server's own chain check is what refuses it
   */
  private static SSLContext context(String keys, boolean presentAnyway, String protocol)
      throws IOException, GeneralSecurityException {
    KeyManager[] keyManagers = null;
    if (keys != null) {
      KeyStore ks = KeyStore.getInstance("PKCS12");
      try (InputStream in = Files.newInputStream(certs.resolve(keys + ".p12"))) {
        ks.load(in, PASSWORD.toCharArray());
      }
      KeyManagerFactory kmf =
          KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
      kmf.init(ks, PASSWORD.toCharArray());
      keyManagers = kmf.getKeyManagers();
      if (presentAnyway) {
        String alias = ks.aliases().nextElement();
        keyManagers = new KeyManager[] {
            new AlwaysPresent((X509ExtendedKeyManager) keyManagers[0], alias)};
      }
    }
    KeyStore trust = KeyStore.getInstance("PKCS12");
    trust.load(null, null);
    try (InputStream in = Files.newInputStream(certs.resolve("ca-cert.pem"))) {
      trust.setCertificateEntry("ca",
          CertificateFactory.getInstance("X.509").generateCertificate(in));
    }
    TrustManagerFactory tmf =
        TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trust);
    SSLContext context = SSLContext.getInstance(protocol);
    context.init(keyManagers, tmf.getTrustManagers(), null);
    return context;
  }

  /** Offers its one client certificate whatever CAs the server asks for. */
  private static final class AlwaysPresent extends X509ExtendedKeyManager {
    private final X509ExtendedKeyManager keys;
    private final String alias;

    AlwaysPresent(X509ExtendedKeyManager keys, String alias) {
      this.keys = keys;
      this.alias = alias;
    }

    @Override
    public String chooseClientAlias(String[] keyType, Principal[] issuers, Socket socket) {
      return alias;
    }

    @Override
    public String[] getClientAliases(String keyType, Principal[] issuers) {
      return new String[] {alias};
    }

    @Override
    public X509Certificate[] getCertificateChain(String a) {
      return keys.getCertificateChain(a);
    }

    @Override
    public PrivateKey getPrivateKey(String a) {
      return keys.getPrivateKey(a);
    }

    @Override
    public String[] getServerAliases(String keyType, Principal[] issuers) {
      return null;
    }

    @Override
    public String chooseServerAlias(String keyType, Principal[] issuers, Socket socket) {
      return null;
    }
  }

  @BeforeEach
  void start() throws Exception {
    Path image = tmp.resolve("disk0.img");
    try (RandomAccessFile f = new RandomAccessFile(image.toFile(), "rw")) {
      f.setLength(SIZE);
    }
    disk = new VirtualDisk("disk0", UUID.randomUUID(), image, SIZE);
    server = tlsServer("127.0.0.1", Duration.ofSeconds(10));
  }

  private NbdServer tlsServer(String host, Duration handshakeTimeout) throws Exception {
    NbdTls tls = new NbdTls(context("server"), (X509Certificate client) -> {
      String subject = client.getSubjectX500Principal().getName();
      askedAbout.add(subject);
      return subject.equals(ALLOWED_CLIENT);
    });
    return new NbdServer(exports(), new InetSocketAddress(host, 0),
        new NbdServer.Limits(16, handshakeTimeout, 64L << 20), tls);
  }

  private ExportResolver exports() {
    return new ExportResolver() {
      @Override
      public Optional<BlockDevice> openExport(String name) {
        return name.equals("vm/disk0") ? Optional.of(disk) : Optional.empty();
      }

      @Override
      public List<String> exportNames() {
        return List.of("vm/disk0");
      }
    };
  }

  @AfterEach
  void stop() throws IOException {
    server.close();
    disk.close();
  }

  private String nbds(String clientDir) {
    return "nbds://127.0.0.1:" + server.port() + "/vm/disk0?tls-certificates="
        + certs.resolve("gnutls-" + clientDir);
  }

  @Test
  void nbdinfoWithAClientCertificateConnectsOverTls() {
    assumeInstalled("nbdinfo");
    String info = run("nbdinfo", nbds("client")).assertOk().output();
    assertThat(info).contains("with TLS").contains("export-size: " + SIZE)
        .contains("can_fua: true").contains("is_read_only: false");
    assertThat(askedAbout).containsExactly(ALLOWED_CLIENT);
  }

  @Test
  void qemuWritesAndReadsOverTls() throws IOException {
    assumeInstalled("qemu-io");
    Path dir = certs.resolve("gnutls-client");
    run("qemu-io", "--object", "tls-creds-x509,id=tls0,dir=" + dir + ",endpoint=client",
        "--image-opts", "driver=nbd,host=127.0.0.1,port=" + server.port()
            + ",export=vm/disk0,tls-creds=tls0",
        "-c", "write -P 0xab 0 64k", "-c", "read -P 0xab 0 64k").assertOk();
    byte[] image = Files.readAllBytes(tmp.resolve("disk0.img"));
    for (int i = 0; i < 64 << 10; i++) {
      assertThat(image[i]).isEqualTo((byte) 0xab);
    }
    assertThat(image[64 << 10]).isZero();
  }

  @Test
  void aClientWithoutACertificateIsRefused() throws Exception {
    assumeInstalled("nbdinfo");
    run("nbdinfo", nbds("no-certificate")).assertFailed();

    try (RawNbdClient nbd = RawNbdClient.connect(server.port())) {
      nbd.clientFlags(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
      // TLS 1.3 clients may finish their side of the handshake before the server has checked
      // them, so the refusal can surface at the first read
      assertThatThrownBy(() -> {
        nbd.startTls(context(null));
        nbd.last(OPT_LIST, new byte[0]);
      }).isInstanceOf(IOException.class);
    }
    assertThat(askedAbout).isEmpty();
  }

  @Test
  void aCertificateFromAnotherCaIsRefused() throws Exception {
    assumeInstalled("nbdinfo");
    run("nbdinfo", nbds("stranger")).assertFailed();

    try (RawNbdClient nbd = RawNbdClient.connect(server.port())) {
      nbd.clientFlags(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
      assertThatThrownBy(() -> {
        nbd.startTls(context("stranger", true, "TLS"));
        nbd.last(OPT_LIST, new byte[0]);
      }).isInstanceOf(IOException.class);
    }
    assertThat(askedAbout).as("the chain never verified, so no identity to ask about").isEmpty();
  }

  @Test
  void aTrustedCertificateThatClientAllowedRejectsIsRefused() throws Exception {
    assumeInstalled("nbdinfo");
    run("nbdinfo", nbds("someone-else")).assertFailed();
    assertThat(askedAbout).containsExactly("CN=someone-else");

    try (RawNbdClient nbd = RawNbdClient.connect(server.port())) {
      nbd.clientFlags(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
      nbd.startTls(context("someone-else"));
      assertThat(nbd.closedByServer()).isTrue();
    }
  }

  @Test
  void plainClientsAreToldTlsIsRequiredAndGetNoExport() throws Exception {
    assumeInstalled("nbdinfo");
    run("nbdinfo", "nbd://127.0.0.1:" + server.port() + "/vm/disk0").assertFailed();
    run("nbdinfo", "--list", "nbd://127.0.0.1:" + server.port()).assertFailed();

    try (RawNbdClient nbd = RawNbdClient.connect(server.port())) {
      nbd.clientFlags(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
      for (int option : List.of(OPT_LIST, OPT_INFO, OPT_GO, 8 /* STRUCTURED_REPLY */, 99)) {
        byte[] data = option == OPT_INFO || option == OPT_GO
            ? RawNbdClient.goData("vm/disk0") : new byte[0];
        RawNbdClient.OptionReply reply = nbd.last(option, data);
        assertThat(reply.type()).as("reply to option %d", option).isEqualTo(REP_ERR_TLS_REQD);
        assertThat(reply.option()).isEqualTo(option);
      }
      assertThat(nbd.last(OPT_ABORT, new byte[0]).type()).isEqualTo(REP_ACK);
    }
    try (RawNbdClient nbd = RawNbdClient.connect(server.port())) {
      nbd.clientFlags(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
      // NBD_OPT_EXPORT_NAME has no error reply: the server must end the session
      nbd.sendOption(OPT_EXPORT_NAME, "vm/disk0".getBytes(StandardCharsets.UTF_8));
      assertThat(nbd.closedByServer()).isTrue();
    }
  }

  @Test
  void startTlsTwiceIsInvalidAndTheSessionGoesOnOverTls() throws Exception {
    try (RawNbdClient nbd = RawNbdClient.connect(server.port())) {
      nbd.clientFlags(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
      assertThat(nbd.startTls(context("client")).type()).isEqualTo(REP_ACK);
      RawNbdClient.OptionReply again = nbd.last(OPT_STARTTLS, new byte[0]);
      assertThat(again.type()).isEqualTo(REP_ERR_INVALID);

      assertThat(nbd.option(OPT_LIST, new byte[0])).extracting(RawNbdClient.OptionReply::type)
          .containsExactly(REP_SERVER, REP_ACK);
      nbd.go("vm/disk0");
      assertThat(nbd.exportSize()).isEqualTo(SIZE);
      assertThat(nbd.write(CMD_FLAG_FUA, 4096, 8192, 0x3c).error()).isZero();
      assertThat(nbd.read(0, 4096, 8192).data()).containsOnly((byte) 0x3c);
    }
    assertThat(askedAbout).containsExactly(ALLOWED_CLIENT);
  }

  @Test
  void aClientLimitedToTls12IsRefused() throws Exception {
    try (RawNbdClient nbd = RawNbdClient.connect(server.port())) {
      nbd.clientFlags(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
      assertThatThrownBy(() -> {
        nbd.startTls(context("client", false, "TLSv1.2"));
        nbd.last(OPT_LIST, new byte[0]);
      }).isInstanceOf(IOException.class);
    }
    assertThat(askedAbout).isEmpty();
  }

  @Test
  void theTlsHandshakeIsInsideTheHandshakeDeadline() throws Exception {
    server.close();
    server = tlsServer("127.0.0.1", Duration.ofSeconds(1));
    try (RawNbdClient nbd = RawNbdClient.connect(server.port())) {
      nbd.clientFlags(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
      assertThat(nbd.last(OPT_STARTTLS, new byte[0]).type()).isEqualTo(REP_ACK);
      long start = System.nanoTime();
      // the client never sends its ClientHello
      assertThat(nbd.closedByServer()).isTrue();
      assertThat(Duration.ofNanos(System.nanoTime() - start)).isLessThan(Duration.ofSeconds(5));
    }
  }

  @Test
  void withTlsTheServerMayListenBeyondLoopback() throws Exception {
    assumeInstalled("nbdinfo");
    server.close();
    server = tlsServer("0.0.0.0", Duration.ofSeconds(10));
    run("nbdinfo", "--size", nbds("client")).assertOk();
  }

  @Test
  void aPlainServerDeclinesStartTls() throws Exception {
    try (NbdServer plain = new NbdServer(exports(), new InetSocketAddress("127.0.0.1", 0));
        RawNbdClient nbd = RawNbdClient.connect(plain.port())) {
      nbd.clientFlags(CLIENT_FLAG_FIXED_NEWSTYLE | CLIENT_FLAG_NO_ZEROES);
      assertThat(nbd.last(OPT_STARTTLS, new byte[0]).type()).isEqualTo(REP_ERR_POLICY);
      nbd.go("vm/disk0"); // and goes on in plain text
      assertThat(nbd.read(0, 0, 4096).error()).isZero();
    }
  }
}
