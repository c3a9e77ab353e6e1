package io.siterecovery.agent.server;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.replication.Transport;
import io.siterecovery.agent.security.Identity;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
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
      throw new AgentException(ErrorCode.BAD_REQUEST, "bad request body: "
          + e.getOriginalMessage());
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
    InputStream wire = bounded(Request.asInputStream(request), limit, what + " on the wire");
    InputStream decoded = Transport.decode(wire,
        request.getHeaders().get(Transport.CONTENT_ENCODING));
    return decoded == wire ? wire : bounded(decoded, limit, what);
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
