package io.siterecovery.agent.security;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.run;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The CA's files, checked with openssl: a tool we did not write reads what we wrote. */
class CertificateAuthorityTest {
  @TempDir Path dir;

  @Test
  void issuedCertificatesVerifyAgainstTheCaAndNameTheirIdentity() throws Exception {
    assumeInstalled("openssl");
    CertificateAuthority ca = CertificateAuthority.create(dir, "test");
    Path site = ca.issue(Identity.site("primary"), List.of("10.0.0.5", "dr1.example.net"));
    Path operator = ca.issue(Identity.operator(), List.of());

    for (Path cert : List.of(site, operator)) {
      run("openssl", "verify", "-CAfile", dir.resolve("ca.pem").toString(), cert.toString())
          .assertOk();
    }
    String text = run("openssl", "x509", "-in", site.toString(), "-noout", "-text").assertOk()
        .output();
    assertThat(text).contains("URI:urn:site-recovery:site:primary")
        .contains("IP Address:10.0.0.5").contains("DNS:dr1.example.net")
        .as("agents answer to loopback names too").contains("DNS:localhost")
        .contains("IP Address:127.0.0.1")
        .contains("TLS Web Server Authentication").contains("TLS Web Client Authentication")
        .contains("CA:FALSE").contains("prime256v1");
    assertThat(run("openssl", "x509", "-in", operator.toString(), "-noout", "-text").output())
        .contains("URI:urn:site-recovery:operator").doesNotContain("DNS:localhost");
    assertThat(run("openssl", "x509", "-in", dir.resolve("ca.pem").toString(), "-noout",
        "-text").output()).contains("CA:TRUE").contains("Certificate Sign");
    run("openssl", "pkey", "-in", dir.resolve("site-primary-key.pem").toString(), "-noout")
        .assertOk();

    for (String key : List.of("ca-key.pem", "site-primary-key.pem", "operator-key.pem")) {
      assertThat(Files.getPosixFilePermissions(dir.resolve(key))).as(key)
          .isEqualTo(PosixFilePermissions.fromString("rw-------"));
    }
  }

  @Test
  void credentialsLoadOnlyForTheIdentityTheCertificateNames() throws Exception {
    CertificateAuthority ca = CertificateAuthority.create(dir, "test");
    ca.issue(Identity.site("primary"), List.of());
    assertThat(TlsCredentials.load(dir, Identity.site("primary")).identity())
        .isEqualTo(Identity.site("primary"));
    // a certificate renamed to pose as another identity is not taken for it
    Files.copy(dir.resolve("site-primary.pem"), dir.resolve("operator.pem"));
    Files.copy(dir.resolve("site-primary-key.pem"), dir.resolve("operator-key.pem"));
    assertThatThrownBy(() -> TlsCredentials.load(dir, Identity.operator()))
        .hasMessageContaining("is not a certificate for operator")
        .hasMessageContaining("site:primary");
    assertThatThrownBy(() -> TlsCredentials.load(dir, Identity.site("secondary")))
        .hasMessageContaining("certs issue");
  }

  @Test
  void aSecondCaInTheSameFolderIsRefusedAndProvisionKeepsWhatExists() throws Exception {
    CertificateAuthority.create(dir, "test");
    assertThatThrownBy(() -> CertificateAuthority.create(dir, "again"))
        .hasMessageContaining("exists already");
    CertificateAuthority.provision(dir, "test", List.of(Identity.operator()));
    String before = Files.readString(dir.resolve("operator.pem"));
    CertificateAuthority.provision(dir, "test",
        List.of(Identity.operator(), Identity.site("secondary")));
    assertThat(Files.readString(dir.resolve("operator.pem"))).isEqualTo(before);
    assertThat(dir.resolve("site-secondary.pem")).exists();
  }

  @Test
  void identitiesAreOperatorMonitorOrASiteWithASafeName() {
    assertThat(Identity.parse("site:dr-2").siteName()).contains("dr-2");
    assertThat(Identity.operator().isOperator()).isTrue();
    Identity monitor = Identity.parse("monitor");
    assertThat(monitor).isEqualTo(Identity.monitor());
    assertThat(monitor.isMonitor()).isTrue();
    assertThat(monitor.isOperator()).as("the monitor drives nothing").isFalse();
    assertThat(monitor.siteName()).as("nor feeds a replica").isEmpty();
    assertThat(Identity.operator().isMonitor()).isFalse();
    for (String bad : List.of("admin", "monitor:x", "Monitor", "site:", "site:../x", "site:Primary", "site:a b", "")) {
      assertThatThrownBy(() -> Identity.parse(bad)).as(bad)
          .isInstanceOf(IllegalArgumentException.class);
    }
  }

  @Test
  void anExpiredCertificateStillLoadsButIsRefusedByThePeer() throws Exception {
    CertificateAuthority ca = CertificateAuthority.create(dir, "test");
    Instant past = Instant.now().minus(Duration.ofDays(30));
    ca.issue(Identity.operator(), List.of(), past.minus(Duration.ofDays(1)), past);
    TlsCredentials expired = TlsCredentials.load(dir, Identity.operator());
    ca.issue(Identity.site("primary"), List.of());
    TlsCredentials server = TlsCredentials.load(dir, Identity.site("primary"));
    var trust = new TlsCredentials.IdentityTrustManager(trustOf(server), null);
    assertThatThrownBy(() -> trust.checkClientTrusted(
        new java.security.cert.X509Certificate[] {Pem.readCertificates(
            dir.resolve("operator.pem")).get(0)}, "ECDHE_ECDSA"))
        .isInstanceOf(java.security.cert.CertificateException.class);
    assertThat(expired.identity()).isEqualTo(Identity.operator());
  }

  private static javax.net.ssl.X509TrustManager trustOf(TlsCredentials credentials)
      throws Exception {
    java.security.KeyStore anchors = java.security.KeyStore.getInstance("PKCS12");
    anchors.load(null, null);
    anchors.setCertificateEntry("ca", credentials.caCertificate());
    javax.net.ssl.TrustManagerFactory tmf = javax.net.ssl.TrustManagerFactory.getInstance("PKIX");
    tmf.init(anchors);
    return (javax.net.ssl.X509TrustManager) tmf.getTrustManagers()[0];
  }
}
