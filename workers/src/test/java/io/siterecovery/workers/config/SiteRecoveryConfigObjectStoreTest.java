package io.siterecovery.workers.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.activities.SiteDirectory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** An object-store site in the worker's configuration: a bucket, and its recovery host's agent. */
class SiteRecoveryConfigObjectStoreTest {
  @TempDir
  Path dir;

  private SiteRecoveryConfig load(String json) throws IOException {
    Path file = dir.resolve("config.json");
    Files.writeString(file, json);
    return SiteRecoveryConfig.load(file);
  }

  @Test
  void anObjectStoreSiteLoadsWithWhatTheWorkerChecks() throws IOException {
    SiteRecoveryConfig c = load("""
        {"sites": {"primary": "https://10.0.0.1:8701", "cloud": "https://10.9.0.1:8701"},
         "partners": {"primary": "cloud"},
         "objectStores": {"cloud": {"endpoint": "https://s3.example.net", "bucket": "dr",
           "prefix": "site-a/", "keyId": "60848c9ca6996b20"}}}""");
    assertThat(c.objectStoreDirectory()).containsEntry("cloud", new SiteDirectory.ObjectStore(
        "https://s3.example.net", "dr", "site-a/", "60848c9ca6996b20"));
    assertThat(c.withCerts(dir).withTemporal("x:7233", null).objectStoreSites())
        .containsKey("cloud");
  }

  @Test
  void devsDefaultsKnowTheCloudSiteAndSitesGivenInsteadDropIt() throws IOException {
    assertThat(load("{}").objectStoreSites()).containsOnlyKeys("cloud");
    assertThat(load("{}").sites()).containsKeys("primary", "secondary", "cloud");
    SiteRecoveryConfig mine = SiteRecoveryConfig.dev().withSites(
        java.util.Map.of("a", "https://10.0.0.1:8701", "b", "https://10.0.0.2:8701"),
        java.util.Map.of("a", "b"));
    assertThat(mine.objectStoreSites()).as("no recovery host left for it").isEmpty();
    assertThat(load("""
        {"sites": {"a": "https://10.0.0.1:8701", "b": "https://10.0.0.2:8701"}}""")
        .objectStoreSites()).isEmpty();
  }

  @Test
  void anObjectStoreWithoutItsRecoveryHostIsRefusedNamingIt() {
    assertThatThrownBy(() -> load("""
        {"sites": {"primary": "https://10.0.0.1:8701"},
         "objectStores": {"cloud": {"bucket": "dr"}}}"""))
        .hasMessageContaining("objectStores.cloud")
        .hasMessageContaining("recovery host");
    assertThatThrownBy(() -> load("""
        {"sites": {"primary": "https://10.0.0.1:8701", "cloud": "https://10.9.0.1:8701"},
         "objectStores": {"cloud": {"bucket": "dr", "secretKey": "x"}}}"""))
        .hasMessageContaining("secretKey");
  }
}
