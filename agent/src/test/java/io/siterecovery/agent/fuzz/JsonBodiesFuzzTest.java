package io.siterecovery.agent.fuzz;

import static org.assertj.core.api.Assertions.assertThat;

import com.code_intelligence.jazzer.junit.DictionaryEntries;
import com.code_intelligence.jazzer.junit.FuzzTest;
import com.fasterxml.jackson.core.JacksonException;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.api.AgentMessages;
import io.siterecovery.agent.vm.VmRecord;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every JSON body of the agent API (the records of {@link AgentMessages}) and the persisted
 * {@link VmRecord}, parsed from arbitrary bytes with the agent's own {@link Json#MAPPER}: a bad
 * body may only fail with a Jackson exception (the API answers it with 400; anything else would
 * be a 500 the caller retries forever), and a body that parses writes back as JSON that parses to
 * an equal value. Unbounded work shows as an input that runs past libFuzzer's per-input timeout.
 *
 * <p>Input: the body, given to every type in turn.
 */
class JsonBodiesFuzzTest {
  /** Found by reflection, so a record added to the API is fuzzed without a change here. */
  private static final List<Class<?>> TYPES = Stream.concat(
          Stream.of(AgentMessages.class.getDeclaredClasses()),
          Stream.concat(Stream.of(VmRecord.class), Stream.of(VmRecord.class.getDeclaredClasses())))
      .filter(Class::isRecord)
      .toList();

  @MethodSource("seeds")
  @DictionaryEntries({"9223372036854775807", "9223372036854775808", "-9223372036854775809",
      "2147483648", "1e400", "-0.0", "\"+1000000000-12-31T23:59:59Z\"", "\"NaN\"", "null", "[]"})
  @FuzzTest(maxDuration = Fuzzing.BOUNDED_RUN)
  void fuzz(byte[] body) throws IOException {
    for (Class<?> type : TYPES) {
      Object value;
      try {
        value = Json.MAPPER.readValue(body, type);
      } catch (JacksonException refused) {
        continue;
      }
      if (value != null) {
        byte[] written = Json.MAPPER.writeValueAsBytes(value);
        assertThat(Json.MAPPER.readValue(written, type))
            .as(() -> type.getSimpleName() + " read back from "
                + new String(written, StandardCharsets.UTF_8))
            .isEqualTo(value);
      }
    }
  }

  /**
   * Each type's fields by name, as Jackson writes an instance read from {@code {}}: the field
   * names are what random bytes would take longest to find.
   */
  static Stream<byte[]> seeds() {
    return TYPES.stream().map(type -> {
      try {
        return Json.MAPPER.writeValueAsBytes(Json.MAPPER.readValue("{}", type));
      } catch (IOException e) {
        throw new UncheckedIOException(e);
      }
    });
  }
}
