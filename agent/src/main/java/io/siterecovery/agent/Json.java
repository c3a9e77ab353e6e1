package io.siterecovery.agent;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.io.IOContext;
import com.fasterxml.jackson.core.io.InputDecorator;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.datatype.jsr310.JavaTimeModule;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PushbackInputStream;
import java.io.Reader;
import java.util.Arrays;

/**
 * The agent's JSON settings: ISO-8601 instants, and unknown fields are errors, not ignored. Bytes
 * are read as UTF-8, the only encoding of JSON between systems (RFC 8259): guessing UTF-16 or
 * UTF-32 from the first bytes let a bad body fail with java.io.CharConversionException instead of
 * a JacksonException, which the API then answered with a retryable 500 instead of a 400. A UTF-8
 * byte order mark, which some editors put in a configuration file, is skipped.
 */
public final class Json {
  public static final ObjectMapper MAPPER = new ObjectMapper(JsonFactory.builder()
          .disable(JsonFactory.Feature.CHARSET_DETECTION)
          .inputDecorator(new SkipUtf8ByteOrderMark())
          .build())
      .registerModule(new JavaTimeModule())
      .disable(SerializationFeature.WRITE_DATES_AS_TIMESTAMPS)
      .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

  private Json() {}

  /** RFC 8259 lets a parser ignore a byte order mark; Jackson skips one only while it guesses. */
  private static final class SkipUtf8ByteOrderMark extends InputDecorator {
    private static final byte[] BOM = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};

    @Override
    public InputStream decorate(IOContext context, InputStream in) throws IOException {
      PushbackInputStream peek = new PushbackInputStream(in, BOM.length);
      byte[] head = peek.readNBytes(BOM.length);
      if (!Arrays.equals(head, BOM)) {
        peek.unread(head);
      }
      return peek;
    }

    /** Null: the bytes as they are, on Jackson's faster path for arrays. */
    @Override
    public InputStream decorate(IOContext context, byte[] src, int offset, int length) {
      boolean bom = length >= BOM.length
          && Arrays.equals(src, offset, offset + BOM.length, BOM, 0, BOM.length);
      return bom ? new ByteArrayInputStream(src, offset + BOM.length, length - BOM.length) : null;
    }

    @Override
    public Reader decorate(IOContext context, Reader in) {
      return in; // characters, not bytes: no encoding to get wrong
    }
  }
}
