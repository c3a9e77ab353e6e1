package io.siterecovery.agent.server;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.catchThrowableOfType;

import com.fasterxml.jackson.core.JacksonException;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages.CreateVmRequest;
import io.siterecovery.agent.api.AgentMessages.EnableProtectionRequest;
import io.siterecovery.agent.api.AgentMessages.PowerRequest;
import org.junit.jupiter.api.Test;

/** A bad body is described in the caller's terms: fields and values, no class of the agent. */
class JsonErrorsTest {
  private static String describe(String json, Class<?> type) {
    JacksonException e = catchThrowableOfType(JacksonException.class,
        () -> Json.MAPPER.readValue(json, type));
    assertThat(e).as(json).isNotNull();
    String text = Call.describe(e);
    assertThat(text).as(json).doesNotContain("io.siterecovery").doesNotContain("$")
        .doesNotContain("class ");
    return text;
  }

  @Test
  void eachKindOfMistakeNamesTheFieldAndWhatWasExpected() {
    assertThat(describe("{\"state\":\"ASLEEP\"}", PowerRequest.class))
        .isEqualTo("field 'state' must be one of [RUNNING, OFF] (got 'ASLEEP')");
    assertThat(describe("{\"targetSite\":\"s\",\"targetUrl\":\"http://x\"}",
        EnableProtectionRequest.class)).isEqualTo("unknown field 'targetUrl' (fields: targetSite)");
    assertThat(describe("{\"name\":\"a\",\"diskSizes\":[\"big\"]}", CreateVmRequest.class))
        .startsWith("field 'diskSizes[0]' must be a number");
    assertThat(describe("{\"name\":", CreateVmRequest.class)).startsWith("not valid JSON at line 1");
    assertThat(describe("[1]", PowerRequest.class)).isEqualTo("the body must be an object");
  }
}
