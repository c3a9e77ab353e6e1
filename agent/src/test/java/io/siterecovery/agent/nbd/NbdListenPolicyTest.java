package io.siterecovery.agent.nbd;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.InetSocketAddress;
import java.util.List;
import java.util.Optional;
import org.junit.jupiter.api.Test;

/** Plain NBD has no authentication, so it listens on loopback only. */
class NbdListenPolicyTest {
  private static final ExportResolver NO_EXPORTS = new ExportResolver() {
    @Override
    public Optional<BlockDevice> openExport(String exportName) {
      return Optional.empty();
    }

    @Override
    public List<String> exportNames() {
      return List.of();
    }
  };

  @Test
  void plainNbdOnAllInterfacesIsRefusedWithTheReason() {
    assertThatThrownBy(() -> new NbdServer(NO_EXPORTS, new InetSocketAddress("0.0.0.0", 0)))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage("NBD on 0.0.0.0 needs TLS: clients other than this host would read and write "
            + "VM disks unauthenticated; configure certificates or bind to 127.0.0.1");
    assertThatThrownBy(() -> new NbdServer(NO_EXPORTS, new InetSocketAddress("::", 0),
        NbdServer.Limits.defaults(), null))
        .isInstanceOf(IllegalArgumentException.class).hasMessageContaining("needs TLS");
  }

  @Test
  void plainNbdOnLoopbackIsAllowed() throws Exception {
    try (NbdServer server = new NbdServer(NO_EXPORTS, new InetSocketAddress("127.0.0.1", 0))) {
      assertThat(server.port()).isPositive();
    }
  }
}
