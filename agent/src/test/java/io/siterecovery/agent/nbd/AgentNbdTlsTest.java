package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.testing.Tools.assumeInstalled;
import static io.siterecovery.agent.testing.Tools.run;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.security.CertificateAuthority;
import io.siterecovery.agent.security.Identity;
import io.siterecovery.agent.testing.TestCerts;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The agent's NBD exports behind TLS with the deployment's own certificates, as an operator
 * sets it up: {@code --nbd-tls}, {@code certs nbd-client}, then qemu-io and nbdinfo.
 */
class AgentNbdTlsTest {
  @TempDir Path tmp;

  private HostAgent start(String bind, boolean tls) throws Exception {
    return new HostAgent(new HostAgent.Settings("primary", tmp.resolve("primary"), "127.0.0.1",
        0, 0, TestCerts.site("primary"), Map.of(), bind, tls, null));
  }

  private Path clientDir(Identity identity) throws Exception {
    TestCerts.credentials(identity);
    Path out = tmp.resolve("nbd-" + identity.fileStem());
    CertificateAuthority.writeX509ClientDir(TestCerts.dir(), identity, out);
    return out;
  }

  @Test
  void theOperatorAndTheSiteItselfMayConnectAPeerSiteMayNot() throws Exception {
    assumeInstalled("nbdinfo", "qemu-io", "qemu-img");
    try (HostAgent agent = start("127.0.0.1", true)) {
      TestCerts.operatorClient(agent).createVm("web01", List.of(4L << 20));
      String uri = agent.nbdUri("web01", "disk0");
      assertThat(uri).startsWith("nbds://");

      Path operator = clientDir(Identity.operator());
      run("qemu-io", "--object", "tls-creds-x509,id=tls0,dir=" + operator + ",endpoint=client",
          "--image-opts", "driver=nbd,host=127.0.0.1,port=" + agent.nbdPort()
              + ",export=web01/disk0,tls-creds=tls0",
          "-c", "write -P 0x5a 0 64k", "-c", "read -P 0x5a 0 64k").assertOk();
      assertThat(run("qemu-img", "info", "--object",
          "tls-creds-x509,id=tls0,dir=" + operator + ",endpoint=client", "--image-opts",
          "driver=nbd,host=127.0.0.1,port=" + agent.nbdPort() + ",export=web01/disk0,tls-creds=tls0")
          .assertOk().output()).contains("virtual size: 4 MiB");
      assertThat(run("nbdinfo", uri + "?tls-certificates=" + clientDir(Identity.site("primary")))
          .assertOk().output()).contains("4194304");

      run("nbdinfo", uri + "?tls-certificates=" + clientDir(Identity.site("secondary")))
          .assertFailed();
      run("nbdinfo", "nbd://127.0.0.1:" + agent.nbdPort() + "/web01/disk0").assertFailed();
    }
  }

  @Test
  void anyAddressButLoopbackNeedsTls() throws Exception {
    assertThatThrownBy(() -> start("0.0.0.0", false)).hasMessageContaining("needs TLS");
    try (HostAgent agent = start("0.0.0.0", true)) {
      assertThat(agent.nbdPort()).isPositive();
    }
  }
}
