package io.siterecovery.agent.server;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.transport.Transport;
import io.siterecovery.agent.security.Identity;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.Arrays;
import java.util.stream.Collectors;
import com.fasterxml.jackson.databind.exc.InvalidFormatException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import org.eclipse.jetty.server.Request;

/** One request to the agent API as a route sees it: who asked, and its body within bounds. */
final class Call {
  private final Request request;
  private final Identity caller;
  private final int maxJsonBytes;

  Call(Request request, Identity caller, int maxJsonBytes) {
    this.request = request;
    this.caller = caller;
    this.maxJsonBytes = maxJsonBytes;
  }

  Identity caller() {
    return caller;
  }

  /** A JSON body that may be left out entirely (null then). */
  <T> T optionalJson(Class<T> type) throws IOException {
    long declared = request.getLength();
    if (declared > maxJsonBytes) {
      throw tooLarge("a JSON body of " + declared + " bytes", maxJsonBytes);
    }
    byte[] bytes;
    try (InputStream in = bounded(Request.asInputStream(request), maxJsonBytes, "a JSON body")) {
      bytes = in.readAllBytes();
    }
    if (bytes.length == 0) {
      return null;
    }
    try {
      return Json.MAPPER.readValue(bytes, type);
    } catch (com.fasterxml.jackson.core.JacksonException e) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "bad request body: " + describe(e));
    }
  }

  <T> T json(Class<T> type) throws IOException {
    T value = optionalJson(type);
    if (value == null) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "request body required");
    }
    return value;
  }

  /** A binary body as the sender meant it (see {@link Transport}), at most {@code limit} bytes. */
  InputStream binary(long limit, String what) throws IOException {
    // Closing Jetty's stream before the end fails the rest of the body, so a refused request
    // (a log that did not fit, say) could not be drained before its answer: the connection was
    // closed under a sender still sending, which saw "header parser received no bytes" on it
    // instead of the answer. The server reads the rest, or Jetty does at the end of the request.
    InputStream jetty = new FilterInputStream(Request.asInputStream(request)) {
      @Override
      public void close() {
      }
    };
    InputStream wire = bounded(jetty, limit, what + " on the wire");
    InputStream decoded = Transport.decode(wire,
        request.getHeaders().get(Transport.CONTENT_ENCODING));
    return decoded == wire ? wire : bounded(decoded, limit, what);
  }

  /**
   * What is wrong with a body, in the caller's terms (its field names and values), without the
   * agent's class names that Jackson's own messages carry.
   */
  static String describe(com.fasterxml.jackson.core.JacksonException e) {
    if (e instanceof UnrecognizedPropertyException u) {
      return "unknown field '" + u.getPropertyName() + "'" + (u.getKnownPropertyIds() == null ? ""
          : " (fields: " + u.getKnownPropertyIds().stream().map(Object::toString).sorted()
              .collect(Collectors.joining(", ")) + ")");
    }
    if (e instanceof MismatchedInputException m) {
      String field = m.getPath().isEmpty() ? "the body" : "field '" + path(m) + "'";
      Class<?> type = m.getTargetType();
      String expected = type == null ? "another value"
          : type.isEnum() ? "one of " + Arrays.toString(type.getEnumConstants())
          : Number.class.isAssignableFrom(type) || (type.isPrimitive() && type != boolean.class)
              ? "a number"
          : type == String.class ? "a string"
          : type == Boolean.class || type == boolean.class ? "true or false"
          : java.util.Collection.class.isAssignableFrom(type) ? "a list"
          : "an object";
      String got = m instanceof InvalidFormatException f && f.getValue() != null
          ? " (got '" + f.getValue() + "')" : "";
      return field + " must be " + expected + got;
    }
    if (e instanceof com.fasterxml.jackson.core.JsonProcessingException p
        && p.getLocation() != null) {
      return "not valid JSON at line " + p.getLocation().getLineNr() + ", column "
          + p.getLocation().getColumnNr();
    }
    return "not valid JSON";
  }

  private static String path(MismatchedInputException e) {
    return e.getPath().stream()
        .map(r -> r.getFieldName() != null ? r.getFieldName() : "[" + r.getIndex() + "]")
        .collect(Collectors.joining(".")).replace(".[", "[");
  }

  private static InputStream bounded(InputStream in, long limit, String what) {
    return new FilterInputStream(in) {
      private long read;

      @Override
      public int read() throws IOException {
        int b = super.read();
        if (b >= 0) {
          count(1);
        }
        return b;
      }

      @Override
      public int read(byte[] b, int off, int len) throws IOException {
        int n = super.read(b, off, len);
        if (n > 0) {
          count(n);
        }
        return n;
      }

      private void count(long n) {
        read += n;
        if (read > limit) {
          throw tooLarge(what + " of more than " + limit + " bytes", limit);
        }
      }
    };
  }

  private static AgentException tooLarge(String what, long limit) {
    return new AgentException(ErrorCode.TOO_LARGE, what + " is over this endpoint's limit of "
        + limit + " bytes");
  }
}
