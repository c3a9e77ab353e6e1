package io.siterecovery.workers.boot;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.siterecovery.workflows.Registration;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.springframework.core.env.StandardEnvironment;
import org.springframework.core.env.SystemEnvironmentPropertySource;
import org.yaml.snakeyaml.Yaml;

/** application.yml registers what the embedded stack registers, on the same task queue. */
class WorkerConfigurationTest {

  /** README's environment form of {@code site-recovery.*}: Spring drops the dash. */
  @Test
  void theEnvironmentFormReadmeShowsBindsAndIsChecked() {
    // Spring maps variable names to keys only for the source of this name.
    String name = StandardEnvironment.SYSTEM_ENVIRONMENT_PROPERTY_SOURCE_NAME;
    StandardEnvironment environment = new StandardEnvironment();
    environment.getPropertySources().replace(name, new SystemEnvironmentPropertySource(name,
        Map.of("SITERECOVERY_SITES_PRIMARY", "https://10.0.0.5:8701",
            "SITERECOVERY_PARTNERS_PRIMARY", "nowhere")));
    assertThatThrownBy(() -> WorkerApplication.checkSettings(environment))
        .hasMessageContaining("site-recovery.partners[primary]: names no site of "
            + "site-recovery.sites [primary]");
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
