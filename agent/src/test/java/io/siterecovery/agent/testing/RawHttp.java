package io.siterecovery.agent.testing;

import io.siterecovery.agent.HostAgent;
import io.siterecovery.agent.security.Identity;
import java.io.IOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;

/** Any request to an agent as a given identity, answered with its raw status and body. */
public final class RawHttp {
  private RawHttp() {}

  public static HttpResponse<String> send(HostAgent agent, Identity as, String method, String path,
      String body) throws IOException, InterruptedException {
    HttpClient client = HttpClient.newBuilder()
        .sslContext(TestCerts.credentials(as).clientContext(Identity.site(agent.site())))
        .connectTimeout(Duration.ofSeconds(10)).build();
    HttpRequest request = HttpRequest.newBuilder(URI.create(agent.url() + path))
        .timeout(Duration.ofSeconds(30))
        .method(method, body == null ? HttpRequest.BodyPublishers.noBody()
            : HttpRequest.BodyPublishers.ofString(body))
        .header("Content-Type", "application/json").build();
    return client.send(request, HttpResponse.BodyHandlers.ofString());
  }
}
