package io.siterecovery.agent;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;

/**
 * The agent's JSON settings: ISO-8601 instants, and unknown fields are errors, not ignored. Bytes
 * are read as UTF-8, the only encoding of JSON between systems (RFC 8259): guessing UTF-16 or
 * UTF-32 from the first bytes let a bad body fail with java.io.CharConversionException instead of
 * a JacksonException, which the API then answered with a retryable 500 instead of a 400.
 */
public final class Json {
  public static final ObjectMapper MAPPER = new ObjectMapper(JsonFactory.builder()
          .disable(JsonFactory.Feature.CHARSET_DETECTION)
          .build())
      .registerModule(new JavaTimeModule())
      .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  private Json() {}
}
