package io.siterecovery.workers.config;

import io.siterecovery.activities.PlanDefinition;
import io.siterecovery.activities.PolicySettings;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * A configuration file re-read when it changes, so that edited policies take effect at the next
 * replication cycle without restarting workers. A file that no longer parses keeps the last good
 * policies and says why.
 */
public final class ConfigFile {
  private static final Logger log = LoggerFactory.getLogger(ConfigFile.class);

  private final Path path;
  private FileTime loadedAt;
  private SiteRecoveryConfig config;

  public ConfigFile(Path path) throws IOException {
    this.path = path;
    this.config = SiteRecoveryConfig.load(path);
    this.loadedAt = Files.getLastModifiedTime(path);
  }

  public SiteRecoveryConfig config() {
    return config;
  }

  public synchronized Map<String, PlanDefinition> plans() {
    policies(); // reloads the file when it changed
    return config.planDefinitions();
  }

  public synchronized Map<String, PolicySettings> policies() {
    try {
      FileTime modified = Files.getLastModifiedTime(path);
      if (!modified.equals(loadedAt)) {
        config = SiteRecoveryConfig.load(path).withTemporal(config.temporal(), config.namespace());
        loadedAt = modified;
        log.info("reloaded policies from {}: {}", path, config.policies().keySet());
      }
    } catch (IOException | RuntimeException e) {
      log.warn("keeping the previous policies: {} does not load ({})", path, e.getMessage());
    }
    return config.policySettings();
  }
}
