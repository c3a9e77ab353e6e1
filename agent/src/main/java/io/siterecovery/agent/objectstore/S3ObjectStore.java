package io.siterecovery.agent.objectstore;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import software.amazon.awssdk.auth.credentials.AwsBasicCredentials;
import software.amazon.awssdk.auth.credentials.StaticCredentialsProvider;
import software.amazon.awssdk.core.ResponseInputStream;
import software.amazon.awssdk.core.checksums.RequestChecksumCalculation;
import software.amazon.awssdk.services.s3.S3Configuration;
import software.amazon.awssdk.core.checksums.ResponseChecksumValidation;
import software.amazon.awssdk.core.exception.SdkException;
import software.amazon.awssdk.core.retry.RetryMode;
import software.amazon.awssdk.core.sync.RequestBody;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.s3.S3Client;
import software.amazon.awssdk.services.s3.model.CompletedPart;
import software.amazon.awssdk.services.s3.model.GetObjectResponse;
import software.amazon.awssdk.services.s3.model.NoSuchKeyException;
import software.amazon.awssdk.services.s3.model.S3Exception;
import software.amazon.awssdk.services.s3.model.S3Object;

/**
 * {@link ObjectStore} on any S3-compatible endpoint through the AWS SDK for Java v2: path-style
 * addressing (what MinIO, Ceph, s3proxy and most on-premises stores need), the SDK's standard
 * retry mode (exponential back-off with jitter on throttling, 5xx and I/O errors), and multipart
 * uploads above {@link Config#multipartThreshold()}. The SDK's default per-request CRC trailers
 * are asked for only when an operation requires them: not every S3-compatible store reads them,
 * and every object is authenticated end to end by {@link SealedObjects} anyway.
 */
public final class S3ObjectStore implements ObjectStore {
  /** S3's own bounds on a multipart upload. */
  private static final long MIN_PART = 5L << 20;
  private static final long MAX_PART = 5L << 30;
  private static final int MAX_PARTS = 10_000;
  private static final Pattern BUCKET = Pattern.compile("[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]");
  private static final Pattern PREFIX = Pattern.compile("([A-Za-z0-9._-]+/)*");

  /**
   * Where the objects go. {@code prefix} is empty or ends with '/'; credentials are an access key
   * pair (from the worker's configuration, never from a request).
   */
  public record Config(URI endpoint, String region, String bucket, String prefix,
      String accessKeyId, String secretAccessKey, long multipartThreshold, long partSize,
      int maxAttempts) {

    public Config {
      if (!BUCKET.matcher(bucket).matches()) {
        throw new IllegalArgumentException("not a bucket name: " + bucket);
      }
      if (!PREFIX.matcher(prefix).matches()) {
        throw new IllegalArgumentException("a prefix is empty or path segments ending in '/': "
            + prefix);
      }
      if (partSize < MIN_PART || partSize > MAX_PART || multipartThreshold < partSize) {
        throw new IllegalArgumentException("part size " + partSize + " and threshold "
            + multipartThreshold + " out of range");
      }
      if (maxAttempts < 1 || maxAttempts > 20) {
        throw new IllegalArgumentException("max attempts out of range: " + maxAttempts);
      }
    }

    /** Without the secret: a configuration may be logged or end up in an exception. */
    @Override
    public String toString() {
      return "Config[endpoint=" + endpoint + ", region=" + region + ", bucket=" + bucket
          + ", prefix=" + prefix + ", accessKeyId=" + accessKeyId + ", secretAccessKey=(hidden)"
          + ", multipartThreshold=" + multipartThreshold + ", partSize=" + partSize
          + ", maxAttempts=" + maxAttempts + "]";
    }

    public static Config of(URI endpoint, String region, String bucket, String prefix,
        String accessKeyId, String secretAccessKey) {
      return new Config(endpoint, region, bucket, prefix, accessKeyId, secretAccessKey,
          64L << 20, 16L << 20, 5);
    }
  }

  private final Config config;
  private final S3Client s3;

  public S3ObjectStore(Config config) {
    this.config = config;
    this.s3 = S3Client.builder()
        .endpointOverride(config.endpoint())
        .region(Region.of(config.region()))
        // Path style: MinIO, Ceph, s3proxy and most on-premises stores need it. No aws-chunked
        // uploads: over plain HTTP the SDK otherwise frames every upload in signed chunks, which
        // a store must decode again (in s3proxy the hottest code of an upload); the payload's
        // hash signs it whole instead, and every object is authenticated by the sealed format.
        .serviceConfiguration(S3Configuration.builder().pathStyleAccessEnabled(true)
            .chunkedEncodingEnabled(false).build())
        .credentialsProvider(StaticCredentialsProvider.create(
            AwsBasicCredentials.create(config.accessKeyId(), config.secretAccessKey())))
        .httpClientBuilder(UrlConnectionHttpClient.builder()
            .connectionTimeout(Duration.ofSeconds(10))
            .socketTimeout(Duration.ofSeconds(60)))
        .overrideConfiguration(o -> o
            .retryStrategy(RetryMode.STANDARD)
            .retryStrategy(b -> b.maxAttempts(config.maxAttempts())))
        .requestChecksumCalculation(RequestChecksumCalculation.WHEN_REQUIRED)
        .responseChecksumValidation(ResponseChecksumValidation.WHEN_REQUIRED)
        .build();
  }

  public Config config() {
    return config;
  }

  @Override
  public void put(String key, byte[] bytes) throws IOException {
    call(key, () -> s3.putObject(b -> b.bucket(config.bucket()).key(full(key)), body(bytes)));
  }

  /** The caller's array as it is: fromBytes copies it, once more per chunk for nothing. */
  private static RequestBody body(byte[] bytes) {
    return RequestBody.fromContentProvider(() -> new ByteArrayInputStream(bytes), bytes.length,
        "application/octet-stream");
  }

  @Override
  public void put(String key, Path file) throws IOException {
    long size = Files.size(file);
    if (size <= config.multipartThreshold()) {
      call(key, () -> s3.putObject(b -> b.bucket(config.bucket()).key(full(key)),
          RequestBody.fromFile(file)));
      return;
    }
    long partSize = Math.max(config.partSize(), (size + MAX_PARTS - 1) / MAX_PARTS);
    String uploadId = call(key, () -> s3.createMultipartUpload(
        b -> b.bucket(config.bucket()).key(full(key)))).uploadId();
    try (InputStream in = Files.newInputStream(file)) {
      List<CompletedPart> parts = new ArrayList<>();
      for (int number = 1; (long) (number - 1) * partSize < size; number++) {
        byte[] part = in.readNBytes((int) Math.min(partSize, size - (number - 1) * partSize));
        int partNumber = number;
        String etag = call(key, () -> s3.uploadPart(b -> b.bucket(config.bucket())
            .key(full(key)).uploadId(uploadId).partNumber(partNumber),
            body(part))).eTag();
        parts.add(CompletedPart.builder().partNumber(partNumber).eTag(etag).build());
      }
      call(key, () -> s3.completeMultipartUpload(b -> b.bucket(config.bucket()).key(full(key))
          .uploadId(uploadId).multipartUpload(u -> u.parts(parts))));
    } catch (IOException | RuntimeException e) {
      // an abandoned upload's parts are billed and invisible: abort before giving up
      try {
        s3.abortMultipartUpload(b -> b.bucket(config.bucket()).key(full(key)).uploadId(uploadId));
      } catch (SdkException abort) {
        e.addSuppressed(abort);
      }
      throw e;
    }
  }

  @Override
  public byte[] get(String key, int maxBytes) throws IOException {
    try (ResponseInputStream<GetObjectResponse> in = call(key,
        () -> s3.getObject(b -> b.bucket(config.bucket()).key(full(key))))) {
      Long length = in.response().contentLength();
      if (length == null || length > maxBytes) {
        in.abort();
        throw new ObjectCorruptException(key, length + " bytes, at most " + maxBytes
            + " expected");
      }
      byte[] bytes = in.readNBytes(length.intValue());
      if (bytes.length != length) {
        throw new IOException(key + ": the response ended after " + bytes.length + " of "
            + length + " bytes");
      }
      return bytes;
    }
  }

  @Override
  public void get(String key, Path target) throws IOException {
    try (ResponseInputStream<GetObjectResponse> in = call(key,
        () -> s3.getObject(b -> b.bucket(config.bucket()).key(full(key))))) {
      Files.copy(in, target, StandardCopyOption.REPLACE_EXISTING);
    }
  }

  @Override
  public byte[] getRange(String key, long offset, int length) throws IOException {
    if (offset < 0 || length <= 0) {
      throw new IllegalArgumentException("range out of bounds: " + offset + "+" + length);
    }
    String range = "bytes=" + offset + "-" + (offset + length - 1);
    return call(key, () -> s3.getObjectAsBytes(b -> b.bucket(config.bucket()).key(full(key))
        .range(range))).asByteArray();
  }

  @Override
  public List<String> list(String prefix) throws IOException {
    List<String> keys = new ArrayList<>();
    call(prefix, () -> {
      for (S3Object object : s3.listObjectsV2Paginator(
          b -> b.bucket(config.bucket()).prefix(full(prefix))).contents()) {
        keys.add(object.key().substring(config.prefix().length()));
      }
      return null;
    });
    return keys;
  }

  @Override
  public void delete(String key) throws IOException {
    call(key, () -> s3.deleteObject(b -> b.bucket(config.bucket()).key(full(key))));
  }

  @Override
  public void close() {
    s3.close();
  }

  private String full(String key) {
    return config.prefix() + key;
  }

  private interface S3Call<T> {
    T run();
  }

  /** The SDK's unchecked exceptions as I/O failures; a missing key as its own. */
  private <T> T call(String key, S3Call<T> call) throws IOException {
    try {
      return call.run();
    } catch (NoSuchKeyException e) {
      throw new ObjectMissingException(key);
    } catch (S3Exception e) {
      if (e.statusCode() == 404 && (e.awsErrorDetails() == null
          || !"NoSuchBucket".equals(e.awsErrorDetails().errorCode()))) {
        throw new ObjectMissingException(key);
      }
      throw new IOException("S3 " + config.endpoint() + " bucket " + config.bucket() + " key "
          + key + ": " + e.getMessage(), e);
    } catch (SdkException e) {
      throw new IOException("S3 " + config.endpoint() + " key " + key + ": " + e.getMessage(), e);
    }
  }
}
