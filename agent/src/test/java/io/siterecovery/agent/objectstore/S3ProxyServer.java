package io.siterecovery.agent.objectstore;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import java.util.Properties;
import java.util.function.UnaryOperator;
import java.util.stream.Stream;
import org.gaul.s3proxy.AuthenticationType;
import org.gaul.s3proxy.S3Proxy;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStore;
import org.jclouds.blobstore.BlobStoreContext;

/**
 * s3proxy in process on a loopback port, on jclouds' filesystem backend: each object is a plain
 * file under {@code baseDir/bucket/}, so a test can read, flip, truncate or copy what the bucket
 * holds at rest. Requests are signed (AWS v2 or v4) with fixed test credentials.
 */
final class S3ProxyServer implements AutoCloseable {
  static final String ACCESS_KEY = "test-access-key";
  static final String SECRET_KEY = "test-secret-key";
  static final String BUCKET = "site-recovery-test";

  private final Path baseDir;
  private final BlobStoreContext context;
  private final S3Proxy proxy;

  private S3ProxyServer(Path baseDir, BlobStoreContext context, S3Proxy proxy) {
    this.baseDir = baseDir;
    this.context = context;
    this.proxy = proxy;
  }

  static S3ProxyServer start(Path baseDir) throws Exception {
    return start(baseDir, UnaryOperator.identity());
  }

  /** As above, serving through {@code wrap} of the backend (a gate on reads, say). */
  static S3ProxyServer start(Path baseDir, UnaryOperator<BlobStore> wrap) throws Exception {
    Properties properties = new Properties();
    properties.setProperty("jclouds.filesystem.basedir", baseDir.toString());
    BlobStoreContext context = ContextBuilder.newBuilder("filesystem")
        .credentials(ACCESS_KEY, SECRET_KEY)
        .overrides(properties)
        .build(BlobStoreContext.class);
    context.getBlobStore().createContainerInLocation(null, BUCKET);
    S3Proxy proxy = S3Proxy.builder()
        .blobStore(wrap.apply(context.getBlobStore()))
        .endpoint(URI.create("http://127.0.0.1:0"))
        .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, ACCESS_KEY, SECRET_KEY)
        .build();
    proxy.start();
    Instant deadline = Instant.now().plus(Duration.ofSeconds(30));
    while (!"STARTED".equals(proxy.getState())) {
      assertThat(Instant.now()).as("s3proxy started").isBefore(deadline);
      Thread.onSpinWait();
    }
    return new S3ProxyServer(baseDir, context, proxy);
  }

  URI endpoint() {
    return URI.create("http://127.0.0.1:" + proxy.getPort());
  }

  S3ObjectStore store(String prefix) {
    return new S3ObjectStore(S3ObjectStore.Config.of(endpoint(), "us-east-1", BUCKET, prefix,
        ACCESS_KEY, SECRET_KEY));
  }

  S3ObjectStore store(String prefix, long multipartThreshold, long partSize) {
    return new S3ObjectStore(new S3ObjectStore.Config(endpoint(), "us-east-1", BUCKET, prefix,
        ACCESS_KEY, SECRET_KEY, multipartThreshold, partSize, 3));
  }

  /**
   * Writes a site file for this server in {@code dir} (its key files beside it, the KEK made of
   * {@code kekByte}), prefix {@code dr/} and {@code chunkSize} (null: the default), as an
   * operator writes one for {@code --object-store cloud=FILE}.
   */
  Path siteFile(Path dir, int kekByte, Integer chunkSize) throws IOException {
    byte[] kek = new byte[32];
    java.util.Arrays.fill(kek, (byte) kekByte);
    return siteFile(dir, "cloud.json", kek, chunkSize == null ? java.util.Map.of()
        : java.util.Map.of("chunkSize", chunkSize));
  }

  /**
   * As above, named {@code name}, with the key-encryption key {@code kek} and the default fields
   * changed by {@code changes} (a null value removes the field).
   */
  Path siteFile(Path dir, String name, byte[] kek, java.util.Map<String, Object> changes)
      throws IOException {
    Path config = Files.createDirectories(dir);
    Files.writeString(config.resolve("kek.hex"), java.util.HexFormat.of().formatHex(kek) + "\n");
    Files.writeString(config.resolve("s3.id"), ACCESS_KEY + "\n");
    Files.writeString(config.resolve("s3.secret"), SECRET_KEY + "\n");
    java.util.Map<String, Object> fields = new java.util.LinkedHashMap<>(java.util.Map.of(
        "endpoint", endpoint().toString(), "region", "us-east-1", "bucket", BUCKET,
        "prefix", "dr/", "accessKeyFile", "s3.id", "secretKeyFile", "s3.secret",
        "kekFile", "kek.hex"));
    changes.forEach((k, v) -> {
      if (v == null) {
        fields.remove(k);
      } else {
        fields.put(k, v);
      }
    });
    return Files.write(config.resolve(name),
        io.siterecovery.agent.Json.MAPPER.writeValueAsBytes(fields));
  }

  /** The file the filesystem backend keeps an object's bytes in. */
  Path objectFile(String fullKey) {
    return baseDir.resolve(BUCKET).resolve(fullKey);
  }

  /** Every file the backend holds, objects and its own metadata alike. */
  List<Path> files() throws IOException {
    try (Stream<Path> walk = Files.walk(baseDir)) {
      return walk.filter(Files::isRegularFile).toList();
    }
  }

  @Override
  public void close() throws Exception {
    proxy.stop();
    context.close();
  }
}
