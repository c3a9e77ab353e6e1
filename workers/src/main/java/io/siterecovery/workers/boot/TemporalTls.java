package io.siterecovery.workers.boot;

import io.grpc.netty.shaded.io.netty.handler.ssl.SslContext;
import io.siterecovery.agent.security.Pem;
import io.temporal.serviceclient.SimpleSslContextBuilder;
import io.temporal.serviceclient.WorkflowServiceStubsOptions;
import io.temporal.spring.boot.TemporalOptionsCustomizer;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.List;
import javax.net.ssl.TrustManagerFactory;
import org.springframework.boot.autoconfigure.condition.ConditionalOnProperty;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * mTLS to the Temporal frontend: the starter reads the client certificate and key
 * ({@code spring.temporal.connection.mtls.cert-chain-file} and {@code key-file}) but trusts only
 * the JVM's CAs; a self-managed cluster's frontend certificate comes from its own CA, named by
 * {@code site-recovery.temporal-server-ca} ({@code worker --temporal-tls-ca}, or the temporal CLI's
 * {@code TEMPORAL_TLS_SERVER_CA_CERT_PATH}).
 */
@Configuration(proxyBeanMethods = false)
@ConditionalOnProperty(prefix = "site-recovery", name = "temporal-server-ca")
public class TemporalTls {

  @Bean
  TemporalOptionsCustomizer<WorkflowServiceStubsOptions.Builder> trustTemporalServerCa(
      SiteRecoveryProperties properties,
      io.temporal.spring.boot.autoconfigure.properties.TemporalProperties temporal) {
    var mtls = temporal.getConnection().getMTLS();
    if (mtls == null || mtls.getCertChainFile() == null || mtls.getKeyFile() == null) {
      throw new IllegalStateException("site-recovery.temporal-server-ca needs the client "
          + "certificate too: spring.temporal.connection.mtls.cert-chain-file and key-file");
    }
    SslContext context = sslContext(Path.of(mtls.getCertChainFile()),
        Path.of(mtls.getKeyFile()), properties.temporalServerCa());
    return builder -> builder.setSslContext(context);
  }

  /**
   * The client side of mTLS to a Temporal frontend: this certificate chain and key, and the
   * frontend's CA if given ({@code null}: the JVM's CAs, as for Temporal Cloud).
   */
  public static SslContext sslContext(Path certChain, Path key, Path serverCa) {
    try (InputStream cert = Files.newInputStream(certChain);
        InputStream keyIn = Files.newInputStream(key)) {
      if (serverCa == null) {
        return SimpleSslContextBuilder.forPKCS8(cert, keyIn).build();
      }
      KeyStore anchors = KeyStore.getInstance("PKCS12");
      anchors.load(null, null);
      List<X509Certificate> cas = Pem.readCertificates(serverCa);
      for (int i = 0; i < cas.size(); i++) {
        anchors.setCertificateEntry("ca-" + i, cas.get(i));
      }
      TrustManagerFactory trust = TrustManagerFactory.getInstance(
          TrustManagerFactory.getDefaultAlgorithm());
      trust.init(anchors);
      return SimpleSslContextBuilder.forPKCS8(cert, keyIn)
          .setTrustManager(trust.getTrustManagers()[0]).build();
    } catch (IOException e) {
      throw new UncheckedIOException("cannot read the Temporal TLS files: " + e.getMessage(), e);
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("cannot use " + serverCa + " as the Temporal server's CA: "
          + e.getMessage(), e);
    }
  }
}
