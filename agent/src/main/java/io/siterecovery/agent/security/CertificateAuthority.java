package io.siterecovery.agent.security;

import java.io.IOException;
import java.io.StringWriter;
import java.io.Writer;
import java.math.BigInteger;
import java.net.InetAddress;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.KeyPair;
import java.security.KeyPairGenerator;
import java.security.PrivateKey;
import java.security.SecureRandom;
import java.security.cert.X509Certificate;
import java.security.spec.ECGenParameterSpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Date;
import java.util.List;
import javax.security.auth.x500.X500Principal;
import org.bouncycastle.asn1.x509.BasicConstraints;
import org.bouncycastle.asn1.x509.ExtendedKeyUsage;
import org.bouncycastle.asn1.x509.Extension;
import org.bouncycastle.asn1.x509.GeneralName;
import org.bouncycastle.asn1.x509.GeneralNames;
import org.bouncycastle.asn1.x509.KeyPurposeId;
import org.bouncycastle.asn1.x509.KeyUsage;
import org.bouncycastle.cert.X509v3CertificateBuilder;
import org.bouncycastle.cert.jcajce.JcaX509CertificateConverter;
import org.bouncycastle.cert.jcajce.JcaX509ExtensionUtils;
import org.bouncycastle.cert.jcajce.JcaX509v3CertificateBuilder;
import org.bouncycastle.openssl.jcajce.JcaPEMWriter;
import org.bouncycastle.operator.OperatorCreationException;
import org.bouncycastle.operator.jcajce.JcaContentSignerBuilder;

/**
 * The deployment's certificate authority, kept as PEM files in one directory:
 * {@code ca.pem}/{@code ca-key.pem}, and per identity {@code <stem>.pem}/{@code <stem>-key.pem}
 * ({@code site-primary.pem}, {@code operator.pem}). Keys are EC P-256, private keys PKCS#8 and
 * readable by the owner only. Every certificate carries its identity as a URI SAN (see
 * {@link Identity}); an agent's certificate also names the hosts it is reached at, so clients that
 * check host names (curl, nbdinfo, qemu) accept it.
 */
public final class CertificateAuthority {
  public static final String CA_CERT = "ca.pem";
  public static final String CA_KEY = "ca-key.pem";
  public static final Duration CA_VALIDITY = Duration.ofDays(3650);
  public static final Duration DEFAULT_VALIDITY = Duration.ofDays(825);
  /** Names every agent's and worker's certificate answers to, so that loopback set-ups work without options. */
  public static final List<String> LOCAL_HOSTS = List.of("localhost", "127.0.0.1", "::1");
  private static final String SIGNATURE = "SHA256withECDSA";
  private static final java.security.Provider BOUNCY_CASTLE =
      new org.bouncycastle.jce.provider.BouncyCastleProvider();

  private final Path dir;
  private final X509Certificate caCert;
  private final PrivateKey caKey;

  private CertificateAuthority(Path dir, X509Certificate caCert, PrivateKey caKey) {
    this.dir = dir;
    this.caCert = caCert;
    this.caKey = caKey;
  }

  /** Creates a new CA in {@code dir}; refuses a directory that already holds one. */
  public static CertificateAuthority create(Path dir, String deploymentName) throws IOException {
    if (Files.exists(dir.resolve(CA_CERT)) || Files.exists(dir.resolve(CA_KEY))) {
      throw new IOException(dir.resolve(CA_CERT) + " exists already: a second CA would split the"
          + " deployment; use 'certs issue' to add identities to it");
    }
    Files.createDirectories(dir);
    try {
      KeyPair keys = newKeyPair();
      X500Principal name = new X500Principal("CN=site-recovery CA " + deploymentName
          + ",O=site-recovery");
      Instant now = Instant.now();
      X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(name, serial(),
          Date.from(now.minus(Duration.ofMinutes(5))), Date.from(now.plus(CA_VALIDITY)), name,
          keys.getPublic());
      JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
      builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(0));
      builder.addExtension(Extension.keyUsage, true,
          new KeyUsage(KeyUsage.keyCertSign | KeyUsage.cRLSign));
      builder.addExtension(Extension.subjectKeyIdentifier, false,
          ext.createSubjectKeyIdentifier(keys.getPublic()));
      X509Certificate cert = sign(builder, keys.getPrivate());
      writeKey(dir.resolve(CA_KEY), keys.getPrivate());
      writePem(dir.resolve(CA_CERT), cert, false);
      return new CertificateAuthority(dir, cert, keys.getPrivate());
    } catch (GeneralSecurityException | OperatorCreationException e) {
      throw new IOException("cannot create the CA: " + e.getMessage(), e);
    }
  }

  /** The CA kept in {@code dir}. */
  public static CertificateAuthority open(Path dir) throws IOException {
    if (!Files.exists(dir.resolve(CA_KEY))) {
      throw new IOException("no CA in " + dir + " (" + CA_KEY + " missing); create one with"
          + " 'site-recovery certs init --dir " + dir + "'");
    }
    return new CertificateAuthority(dir, Pem.readCertificates(dir.resolve(CA_CERT)).get(0),
        Pem.readPrivateKey(dir.resolve(CA_KEY)));
  }

  /** The CA in {@code dir}, created there first if the directory has none. */
  public static CertificateAuthority openOrCreate(Path dir, String deploymentName)
      throws IOException {
    return Files.exists(dir.resolve(CA_KEY)) ? open(dir) : create(dir, deploymentName);
  }

  /**
   * The CA in {@code dir} with a certificate for each of {@code identities}: whatever is missing
   * is created, nothing that exists is replaced. What {@code dev}, {@code demo} and the bench do
   * on first start, so the embedded default is secure with nothing to configure.
   */
  public static CertificateAuthority provision(Path dir, String deploymentName,
      List<Identity> identities) throws IOException {
    CertificateAuthority ca = openOrCreate(dir, deploymentName);
    for (Identity identity : identities) {
      if (!Files.exists(dir.resolve(identity.fileStem() + ".pem"))
          || !Files.exists(dir.resolve(identity.fileStem() + "-key.pem"))) {
        ca.issue(identity, List.of());
      }
    }
    return ca;
  }

  public Path dir() {
    return dir;
  }

  public X509Certificate certificate() {
    return caCert;
  }

  /** Issues a certificate for {@code identity}, valid from now for {@link #DEFAULT_VALIDITY}. */
  public Path issue(Identity identity, List<String> hosts) throws IOException {
    Instant now = Instant.now();
    return issue(identity, hosts, now.minus(Duration.ofMinutes(5)), now.plus(DEFAULT_VALIDITY));
  }

  /**
   * Issues a certificate for {@code identity} valid between the two instants, naming
   * {@code hosts} (names or IP addresses) as DNS/IP SANs; an agent also gets the loopback names.
   * Overwrites an earlier certificate of the same identity. Returns the certificate's path.
   */
  public Path issue(Identity identity, List<String> hosts, Instant notBefore, Instant notAfter)
      throws IOException {
    try {
      KeyPair keys = newKeyPair();
      X500Principal subject = new X500Principal("CN=" + identity.value() + ",O=site-recovery");
      X509v3CertificateBuilder builder = new JcaX509v3CertificateBuilder(caCert, serial(),
          Date.from(notBefore), Date.from(notAfter), subject, keys.getPublic());
      JcaX509ExtensionUtils ext = new JcaX509ExtensionUtils();
      builder.addExtension(Extension.basicConstraints, true, new BasicConstraints(false));
      builder.addExtension(Extension.keyUsage, true,
          new KeyUsage(KeyUsage.digitalSignature | KeyUsage.keyAgreement));
      builder.addExtension(Extension.extendedKeyUsage, false, new ExtendedKeyUsage(
          new KeyPurposeId[] {KeyPurposeId.id_kp_serverAuth, KeyPurposeId.id_kp_clientAuth}));
      builder.addExtension(Extension.authorityKeyIdentifier, false,
          ext.createAuthorityKeyIdentifier(caCert));
      builder.addExtension(Extension.subjectKeyIdentifier, false,
          ext.createSubjectKeyIdentifier(keys.getPublic()));
      builder.addExtension(Extension.subjectAlternativeName, false,
          new GeneralNames(subjectNames(identity, hosts).toArray(GeneralName[]::new)));
      X509Certificate cert = sign(builder, caKey);
      Path certFile = dir.resolve(identity.fileStem() + ".pem");
      writeKey(dir.resolve(identity.fileStem() + "-key.pem"), keys.getPrivate());
      writePem(certFile, cert, false);
      return certFile;
    } catch (GeneralSecurityException | OperatorCreationException e) {
      throw new IOException("cannot issue a certificate for " + identity + ": " + e.getMessage(),
          e);
    }
  }

  /**
   * Lays out {@code identity}'s certificate for the x509 clients of GnuTLS, qemu and libnbd
   * ({@code qemu-img --object tls-creds-x509,dir=OUT,endpoint=client},
   * {@code nbdinfo 'nbds://...?tls-certificates=OUT'}): {@code ca-cert.pem},
   * {@code client-cert.pem}, {@code client-key.pem} (0600).
   */
  public static void writeX509ClientDir(Path certsDir, Identity identity, Path out)
      throws IOException {
    Files.createDirectories(out);
    Files.copy(certsDir.resolve(CA_CERT), out.resolve("ca-cert.pem"),
        StandardCopyOption.REPLACE_EXISTING);
    Files.copy(certsDir.resolve(identity.fileStem() + ".pem"), out.resolve("client-cert.pem"),
        StandardCopyOption.REPLACE_EXISTING);
    Path key = out.resolve("client-key.pem");
    Files.deleteIfExists(key);
    Files.createFile(key, PosixFilePermissions.asFileAttribute(
        PosixFilePermissions.fromString("rw-------")));
    Files.write(key, Files.readAllBytes(certsDir.resolve(identity.fileStem() + "-key.pem")));
  }

  private static List<GeneralName> subjectNames(Identity identity, List<String> hosts) {
    List<GeneralName> names = new ArrayList<>();
    names.add(new GeneralName(GeneralName.uniformResourceIdentifier, identity.sanUri()));
    List<String> all = new ArrayList<>(hosts);
    if (identity.siteName().isPresent() || identity.isWorker()) {
      LOCAL_HOSTS.stream().filter(h -> !all.contains(h)).forEach(all::add);
    }
    for (String host : all) {
      names.add(isIpAddress(host) ? new GeneralName(GeneralName.iPAddress, host)
          : new GeneralName(GeneralName.dNSName, host));
    }
    return names;
  }

  private static boolean isIpAddress(String host) {
    if (!host.matches("[0-9.]+|[0-9a-fA-F:]*:[0-9a-fA-F:.]*")) {
      return false;
    }
    try {
      InetAddress.getByName(host); // a literal: no lookup happens
      return true;
    } catch (IOException e) {
      return false;
    }
  }

  /**
   * Keys come from BouncyCastle's provider because its EC private keys encode their public key
   * too (RFC 5915); GnuTLS, and so qemu and nbdinfo, refuse a key file without it, which is what
   * the JDK's own provider writes.
   */
  private static KeyPair newKeyPair() throws GeneralSecurityException {
    KeyPairGenerator generator = KeyPairGenerator.getInstance("EC", BOUNCY_CASTLE);
    generator.initialize(new ECGenParameterSpec("secp256r1"), new SecureRandom());
    return generator.generateKeyPair();
  }

  private static BigInteger serial() {
    return new BigInteger(127, new SecureRandom()).add(BigInteger.ONE);
  }

  private static X509Certificate sign(X509v3CertificateBuilder builder, PrivateKey key)
      throws OperatorCreationException, GeneralSecurityException {
    return new JcaX509CertificateConverter()
        .getCertificate(builder.build(new JcaContentSignerBuilder(SIGNATURE).build(key)));
  }

  private static void writeKey(Path file, PrivateKey key) throws IOException {
    writePem(file, key, true);
  }

  /** Writes atomically; a key file is created readable by its owner only. */
  private static void writePem(Path file, Object value, boolean secret) throws IOException {
    StringWriter text = new StringWriter();
    try (JcaPEMWriter pem = new JcaPEMWriter(text)) {
      pem.writeObject(value instanceof PrivateKey k ? new org.bouncycastle.openssl.jcajce
          .JcaPKCS8Generator(k, null) : value);
    }
    Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
    Files.deleteIfExists(tmp);
    if (secret) {
      Files.createFile(tmp, PosixFilePermissions.asFileAttribute(
          PosixFilePermissions.fromString("rw-------")));
    } else {
      Files.createFile(tmp);
    }
    try (Writer out = Files.newBufferedWriter(tmp, StandardCharsets.US_ASCII)) {
      out.write(text.toString());
    }
    Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
  }
}
