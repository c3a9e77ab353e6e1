package io.siterecovery.workers.dev;

import io.siterecovery.agent.DurableFiles;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.workers.config.SiteRecoveryConfig;
import java.io.Closeable;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Properties;
import org.gaul.s3proxy.AuthenticationType;
import org.gaul.s3proxy.S3Proxy;
import org.jclouds.ContextBuilder;
import org.jclouds.blobstore.BlobStoreContext;

/**
 * dev's object-store site: s3proxy in process on a loopback port, on jclouds' filesystem backend
 * under {@code <data>/cloud/store}. On first start it makes the site's credentials and its
 * key-encryption key (random, owner-only files) and the site file every agent that uses the bucket
 * loads ({@code --object-store cloud=<data>/cloud/site.json}), exactly as an operator writes one
 * for real S3: nothing of it is special to dev but the server.
 */
public final class CloudBucket implements Closeable {
  public static final String SITE = SiteRecoveryConfig.DEV_CLOUD_SITE;
  public static final String BUCKET = "site-recovery-dev";
  static final String REGION = "us-east-1";

  private final Path dir;
  private final BlobStoreContext context;
  private final S3Proxy proxy;

  private CloudBucket(Path dir, BlobStoreContext context, S3Proxy proxy) {
    this.dir = dir;
    this.context = context;
    this.proxy = proxy;
  }

  /** Starts the server on {@code port} (0: a free one) with the credentials kept in {@code dir}. */
  public static CloudBucket start(Path dir, int port) throws IOException {
    Files.createDirectories(dir);
    Path store = Files.createDirectories(dir.resolve("store"));
    String accessKey = secret(dir.resolve("access-key"), 10);
    String secretKey = secret(dir.resolve("secret-key"), 20);
    secret(dir.resolve("kek.hex"), 32);
    Properties properties = new Properties();
    properties.setProperty("jclouds.filesystem.basedir", store.toString());
    BlobStoreContext context = ContextBuilder.newBuilder("filesystem")
        .credentials(accessKey, secretKey).overrides(properties).build(BlobStoreContext.class);
    S3Proxy proxy;
    try {
      context.getBlobStore().createContainerInLocation(null, BUCKET);
      proxy = S3Proxy.builder().blobStore(context.getBlobStore())
          .endpoint(URI.create("http://127.0.0.1:" + port))
          .awsAuthentication(AuthenticationType.AWS_V2_OR_V4, accessKey, secretKey)
          .build();
      proxy.start();
      long deadline = System.nanoTime() + Duration.ofSeconds(30).toNanos();
      while (!"STARTED".equals(proxy.getState())) {
        if ("FAILED".equals(proxy.getState()) || System.nanoTime() > deadline) {
          proxy.stop();
          throw new IOException("the in-process S3 server (s3proxy) did not start on port "
              + port + " (state " + proxy.getState() + "; is the port taken?)");
        }
        Thread.onSpinWait();
      }
    } catch (IOException e) {
      context.close();
      throw e;
    } catch (Exception e) {
      context.close();
      throw new IOException("the in-process S3 server (s3proxy) did not start on port " + port
          + ": " + e.getMessage(), e);
    }
    CloudBucket bucket = new CloudBucket(dir, context, proxy);
    bucket.writeSiteFile();
    return bucket;
  }

  /** A random secret of {@code bytes} bytes in hex, made once and kept readable by its owner only. */
  private static String secret(Path file, int bytes) throws IOException {
    if (!Files.exists(file)) {
      byte[] random = new byte[bytes];
      new SecureRandom().nextBytes(random);
      DurableFiles.writeOwnerOnly(file,
          HexFormat.of().formatHex(random).getBytes(StandardCharsets.US_ASCII));
    }
    return Files.readString(file).trim();
  }

  private void writeSiteFile() throws IOException {
    Map<String, Object> site = new LinkedHashMap<>();
    site.put("endpoint", endpoint().toString());
    site.put("region", REGION);
    site.put("bucket", BUCKET);
    site.put("accessKeyFile", "access-key");
    site.put("secretKeyFile", "secret-key");
    site.put("kekFile", "kek.hex");
    Files.writeString(siteFile(), Json.MAPPER.writerWithDefaultPrettyPrinter()
        .writeValueAsString(site));
  }

  public URI endpoint() {
    return URI.create("http://127.0.0.1:" + proxy.getPort());
  }

  /** The site file an agent loads for {@code cloud}. */
  public Path siteFile() {
    return dir.resolve("site.json");
  }

  public ObjectStoreSite site() {
    return ObjectStoreSite.load(SITE, siteFile());
  }

  /** Where the filesystem backend keeps the bucket's objects, one file each. */
  public Path storeDir() {
    return dir.resolve("store").resolve(BUCKET);
  }

  @Override
  public void close() throws IOException {
    try {
      proxy.stop();
    } catch (Exception e) {
      throw new IOException("stopping the in-process S3 server: " + e.getMessage(), e);
    } finally {
      context.close();
    }
  }
}
