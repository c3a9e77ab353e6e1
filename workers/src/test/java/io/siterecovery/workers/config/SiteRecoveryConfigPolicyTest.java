package io.siterecovery.workers.config;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A policy a workflow could not use is refused when the configuration is loaded. */
class SiteRecoveryConfigPolicyTest {
  @TempDir
  Path dir;

  private SiteRecoveryConfig load(String policies) throws IOException {
    Path file = dir.resolve("config.json");
    Files.writeString(file, "{\"policies\":" + policies + "}");
    return SiteRecoveryConfig.load(file);
  }

  @Test
  void validPoliciesLoadWithTheDefaultsFilledIn() throws IOException {
    SiteRecoveryConfig c = load("{\"fast\":{\"copyFrequency\":\"PT5S\",\"resyncWindow\":"
        + "{\"start\":\"22:00\",\"end\":\"06:00\",\"timeZone\":\"Europe/Paris\"}}}");
    assertThat(c.policySettings().get("fast").resyncWindow().timeZone()).isEqualTo("Europe/Paris");
  }

  @Test
  void eachBadFieldIsNamedWithItsPolicy() {
    assertThatThrownBy(() -> load("{\"gold\":{\"resyncWindow\":{\"start\":\"22:00\","
        + "\"end\":\"06:00\",\"timeZone\":\"Mars/Olympus\"}}}"))
        .hasMessageContaining("policy 'gold'").hasMessageContaining("resyncWindow.timeZone")
        .hasMessageContaining("Mars/Olympus");
    assertThatThrownBy(() -> load("{\"gold\":{\"resyncWindow\":{\"start\":\"22:00\"}}}"))
        .hasMessageContaining("policy 'gold'").hasMessageContaining("resyncWindow");
    assertThatThrownBy(() -> load("{\"gold\":{\"copyFrequency\":\"PT0S\"}}"))
        .hasMessageContaining("policy 'gold'").hasMessageContaining("copyFrequency");
    assertThatThrownBy(() -> load("{\"gold\":{\"rpoThreshold\":\"-PT1M\"}}"))
        .hasMessageContaining("rpoThreshold");
    assertThatThrownBy(() -> load("{\"gold\":{\"retention\":\"PT0S\"}}"))
        .hasMessageContaining("retention");
    assertThatThrownBy(() -> load("{\"gold\":{\"appConsistentFrequency\":\"PT0S\"}}"))
        .hasMessageContaining("appConsistentFrequency");
    assertThatThrownBy(() -> load("{\"gold\":{\"bandwidthMBps\":0}}"))
        .hasMessageContaining("policy 'gold'").hasMessageContaining("bandwidthMBps");
    assertThatThrownBy(() -> load("{\"gold\":{\"maxTestDuration\":\"PT0S\"}}"))
        .hasMessageContaining("maxTestDuration");
  }
}
