package io.siterecovery.workers.boot;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.workflows.Registration;
import java.io.InputStream;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/** application.yml registers what the embedded stack registers, on the same task queue. */
class WorkerConfigurationTest {

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
