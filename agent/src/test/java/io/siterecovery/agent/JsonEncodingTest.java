package io.siterecovery.agent;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.core.JacksonException;
import io.siterecovery.agent.api.AgentMessages.ResyncBegin;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;

/**
 * Bodies are UTF-8 (a byte order mark is skipped): whatever else arrives fails as a
 * JacksonException, which the API maps to 400.
 */
class JsonEncodingTest {
  @Test
  void aBodyThatLooksLikeUtf32FailsAsAJacksonException() {
    // "{" then zeroes: Jackson used to guess UTF-32 and throw java.io.CharConversionException
    byte[] body = new byte[131];
    body[0] = '{';
    System.arraycopy("\"x\":1}".getBytes(StandardCharsets.US_ASCII), 0, body, 118, 6);
    assertThatThrownBy(() -> Json.MAPPER.readValue(body, ResyncBegin.class))
        .isInstanceOf(JacksonException.class);
  }

  @Test
  void aUtf16BodyFailsAsAJacksonException() {
    byte[] body = "{\"generation\":1}".getBytes(StandardCharsets.UTF_16LE);
    assertThatThrownBy(() -> Json.MAPPER.readValue(body, ResyncBegin.class))
        .isInstanceOf(JacksonException.class);
  }

  @Test
  void aPlainUtf8BodyReads() throws IOException {
    byte[] body = "{\"generation\":7}".getBytes(StandardCharsets.UTF_8);
    assertThat(Json.MAPPER.readValue(body, ResyncBegin.class)).isEqualTo(new ResyncBegin(7));
  }

  @Test
  void aUtf8ByteOrderMarkIsSkipped() throws IOException {
    byte[] file = "\uFEFF{\"generation\":7}".getBytes(StandardCharsets.UTF_8);
    assertThat(Json.MAPPER.readValue(file, ResyncBegin.class)).isEqualTo(new ResyncBegin(7));
    assertThat(Json.MAPPER.readValue(new ByteArrayInputStream(file), ResyncBegin.class))
        .isEqualTo(new ResyncBegin(7));
  }

  @Test
  void aUtf16FileWithItsByteOrderMarkFailsAsAJacksonException() {
    byte[] file = "\uFEFF{\"generation\":7}".getBytes(StandardCharsets.UTF_16LE);
    assertThatThrownBy(() -> Json.MAPPER.readValue(new ByteArrayInputStream(file),
        ResyncBegin.class)).isInstanceOf(JacksonException.class);
  }
}
