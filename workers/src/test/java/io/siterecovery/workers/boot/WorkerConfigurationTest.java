package io.siterecovery.workers.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.workers.config.SiteRecoveryConfig;
import io.siterecovery.workflows.Registration;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.boot.context.properties.bind.Binder;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;
import org.yaml.snakeyaml.Yaml;

/**
 * The worker's Spring settings: the environment form README shows binds and is checked, and
 * application.yml registers what the embedded stack registers, on the same task queue.
 */
class WorkerConfigurationTest {

  /** README's environment form of {@code site-recovery.*}: Spring drops the dash. */
  @Test
  void theEnvironmentFormReadmeShowsBindsAndIsChecked() {
    StandardEnvironment environment = environment(Map.of(
        "SITERECOVERY_SITES_PRIMARY", "https://10.0.0.5:8701",
        "SITERECOVERY_PARTNERS_PRIMARY", "nowhere"));
    assertThatThrownBy(() -> WorkerApplication.checkSettings(environment))
        .hasMessageContaining("site-recovery.partners[primary]: names no site of "
            + "site-recovery.sites [primary]");
  }

  /**
   * The cloud target by settings alone, no configuration file: the object-store site is in
   * {@code sites} (its recovery host) and in {@code objectStores} (what the agents' site files
   * must name, which the worker checks before protecting a VM to it).
   */
  @Test
  void anObjectStoreSiteBindsFromTheEnvironmentFormAndReachesTheWorkersSites() {
    StandardEnvironment environment = environment(Map.of(
        "SITERECOVERY_SITES_PRIMARY", "https://10.0.0.5:8701",
        "SITERECOVERY_SITES_CLOUD", "https://10.0.0.9:8701",
        "SITERECOVERY_OBJECTSTORES_CLOUD_ENDPOINT", "https://s3.eu-west-1.amazonaws.com",
        "SITERECOVERY_OBJECTSTORES_CLOUD_BUCKET", "dr-replicas",
        "SITERECOVERY_OBJECTSTORES_CLOUD_PREFIX", "site-recovery/",
        "SITERECOVERY_OBJECTSTORES_CLOUD_KEYID", "kek-2026"));
    SiteRecoveryProperties properties = Binder.get(environment)
        .bindOrCreate("site-recovery", SiteRecoveryProperties.class);

    SiteRecoveryConfig config = new WorkerSettings(properties).config();

    assertThat(config.sites()).containsOnlyKeys("primary", "cloud");
    assertThat(config.objectStoreSites()).containsExactly(Map.entry("cloud",
        new SiteRecoveryConfig.ObjectStore("https://s3.eu-west-1.amazonaws.com", "dr-replicas",
            "site-recovery/", "kek-2026")));
  }

  @Test
  void anObjectStoreWithoutBucketOrRecoveryHostIsNamed() {
    StandardEnvironment environment = environment(Map.of(
        "SITERECOVERY_SITES_PRIMARY", "https://10.0.0.5:8701",
        "SITERECOVERY_OBJECTSTORES_TAPE_ENDPOINT", "https://s3.example.net",
        "SITERECOVERY_OBJECTSTORES_VAULT_ENDPOINT", "https://s3.example.net",
        "SITERECOVERY_OBJECTSTORES_VAULT_BUCKET", "dr"));
    assertThatThrownBy(() -> WorkerApplication.checkSettings(environment))
        .hasMessageContaining("site-recovery.objectStores[tape]: needs endpoint and bucket")
        .hasMessageContaining("site-recovery.objectStores[vault]: needs its recovery host's "
            + "agent URL in site-recovery.sites [primary]");
  }

  /** Spring maps variable names to keys only for the source of this name. */
  private static StandardEnvironment environment(Map<String, Object> variables) {
    String name = StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME;
    StandardEnvironment environment = new StandardEnvironment();
    environment.getPropertySources().replace(name,
        new SystemEnvironmentPropertySource(name, variables));
    return environment;
  }

  @Test
  @SuppressWarnings("unchecked")
  void applicationYmlRegistersEveryWorkflowOfRegistrationOnItsTaskQueue() throws Exception {
    Map<String, Object> yml;
    try (InputStream in = getClass().getResourceAsStream("/application.yml")) {
      yml = new Yaml().load(in);
    }
    Map<String, Object> temporal = (Map<String, Object>) ((Map<String, Object>) yml.get("spring"))
        .get("temporal");
    List<Map<String, Object>> workers = (List<Map<String, Object>>) temporal.get("workers");
    assertThat(workers).hasSize(1);
    assertThat(workers.get(0).get("task-queue")).isEqualTo(Registration.TASK_QUEUE);
    assertThat((List<String>) workers.get(0).get("workflow-classes")).containsExactlyElementsOf(
        Registration.WORKFLOW_IMPLEMENTATIONS.stream().map(Class::getName).toList());
    assertThat((List<String>) workers.get(0).get("activity-beans"))
        .containsExactly("agentActivities", "policyActivities", "planRunActivities");
  }
}
