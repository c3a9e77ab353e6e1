package io.siterecovery.agent.objectstore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;

/** The store's own contract against s3proxy: round trips, ranges, prefixes, multipart, misses. */
class S3ObjectStoreTest {
  private static final long PART = 5L << 20;

  @TempDir
  static Path bucketDir;
  private static S3ProxyServer s3proxy;

  @TempDir
  Path dir;

  @BeforeAll
  static void startS3Proxy() throws Exception {
    s3proxy = S3ProxyServer.start(bucketDir);
  }

  @AfterAll
  static void stopS3Proxy() throws Exception {
    s3proxy.close();
  }

  @Test
  void aConfigurationPrintsNoSecret() {
    S3ObjectStore.Config config = S3ObjectStore.Config.of(java.net.URI.create(
        "http://127.0.0.1:1"), "us-east-1", "dr-bucket", "p/", "AKIDEXAMPLE", "wJalrXUtnFEMI-secret");
    assertThat(config.toString()).contains("AKIDEXAMPLE").doesNotContain("wJalrXUtnFEMI");
  }

  @Test
  void putGetRangeListAndDeleteUnderAPrefix() throws Exception {
    try (S3ObjectStore store = s3proxy.store("site-a/")) {
      byte[] bytes = BucketReplicaTest.random(100_000, 1);
      store.put("vms/x/one", bytes);
      store.put("vms/x/two", new byte[] {1});
      store.put("vms/y/three", new byte[] {2});

      assertThat(store.get("vms/x/one", bytes.length)).isEqualTo(bytes);
      assertThatThrownBy(() -> store.get("vms/x/one", bytes.length - 1))
          .isInstanceOf(ObjectCorruptException.class).hasMessageContaining("100000 bytes");
      assertThat(store.getRange("vms/x/one", 5000, 300))
          .isEqualTo(Arrays.copyOfRange(bytes, 5000, 5300));
      assertThat(store.list("vms/x/")).containsExactly("vms/x/one", "vms/x/two");
      assertThat(s3proxy.objectFile("site-a/vms/x/one")).exists();

      store.delete("vms/x/two");
      assertThat(store.list("vms/x/")).containsExactly("vms/x/one");
      assertThatThrownBy(() -> store.get("vms/x/two", 10))
          .isInstanceOf(ObjectMissingException.class).hasMessageContaining("vms/x/two");
    }
  }

  @Test
  void aFileAboveTheThresholdIsUploadedInParts() throws Exception {
    Path file = Files.write(dir.resolve("big"), BucketReplicaTest.random((int) (2 * PART + 123), 2));
    try (S3ObjectStore store = s3proxy.store("multipart/", PART, PART);
        S3Client s3 = S3Client.builder().endpointOverride(s3proxy.endpoint())
            .region(Region.US_EAST_1).forcePathStyle(true)
            .credentialsProvider(StaticCredentialsProvider.create(AwsBasicCredentials.create(
                S3ProxyServer.ACCESS_KEY, S3ProxyServer.SECRET_KEY)))
            .build()) {
      store.put("big", file);

      // an object completed from parts has the ETag of its parts' digests, suffixed -<parts>
      String etag = s3.headObject(b -> b.bucket(S3ProxyServer.BUCKET).key("multipart/big"))
          .eTag();
      assertThat(etag).endsWith("-3\"");
      Path back = dir.resolve("back");
      store.get("big", back);
      assertThat(Files.mismatch(file, back)).isEqualTo(-1);
    }
  }

  @Test
  void retriesAFailingRequestUpToItsAttemptsThenFails() throws Exception {
    AtomicInteger requests = new AtomicInteger();
    HttpServer failing = HttpServer.create(new InetSocketAddress(InetAddress.getLoopbackAddress(),
        0), 0);
    failing.createContext("/", exchange -> {
      requests.incrementAndGet();
      exchange.getRequestBody().readAllBytes();
      byte[] body = ("<Error><Code>InternalError</Code><Message>down</Message></Error>")
          .getBytes(StandardCharsets.UTF_8);
      exchange.sendResponseHeaders(500, body.length);
      exchange.getResponseBody().write(body);
      exchange.close();
    });
    failing.start();
    try (S3ObjectStore store = new S3ObjectStore(new S3ObjectStore.Config(
        URI.create("http://127.0.0.1:" + failing.getAddress().getPort()), "us-east-1",
        S3ProxyServer.BUCKET, "", "a", "b", PART, PART, 4))) {
      assertThatThrownBy(() -> store.put("k", new byte[10]))
          .isInstanceOf(IOException.class).hasMessageContaining("key k");
      assertThat(requests).as("4 attempts, not the SDK default of 3").hasValue(4);
    } finally {
      failing.stop(0);
    }
  }
}
