package io.siterecovery.agent.objectstore.ship;

import com.fasterxml.jackson.databind.JsonNode;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.objectstore.KeyEncryptionKey;
import io.siterecovery.agent.objectstore.S3ObjectStore;
import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Set;
import java.util.function.UnaryOperator;
import java.util.regex.Pattern;

/**
 * A named object-store site an agent may replicate to: where the bucket is, the access key pair,
 * and the key-encryption key, read from a small JSON file at start:
 *
 * <pre>
 * {"endpoint": "https://s3.example.net", "region": "eu-west-1", "bucket": "dr-replicas",
 *  "prefix": "site-a/", "accessKeyFile": "/etc/sr/s3.id", "secretKeyFile": "/etc/sr/s3.secret",
 *  "kekFile": "/etc/sr/kek.hex", "chunkSize": 4194304}
 * </pre>
 *
 * {@code accessKeyEnv}/{@code secretKeyEnv} name environment variables instead of the key files.
 * A bad field is refused at start with its name. {@link #toString()} names the site and the
 * bucket only: the secret and the key are never logged nor answered.
 */
public final class ObjectStoreSite {
  private static final Pattern SITE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
  private static final Pattern REGION = Pattern.compile("[a-z0-9-]{1,32}");
  private static final Pattern ENV = Pattern.compile("[A-Za-z_][A-Za-z0-9_]{0,127}");
  private static final long MAX_FILE_BYTES = 64 << 10;
  private static final long MAX_CREDENTIAL_BYTES = 1024;
  private static final Set<String> FIELDS = Set.of("endpoint", "region", "bucket", "prefix",
      "accessKeyFile", "secretKeyFile", "accessKeyEnv", "secretKeyEnv", "kekFile", "chunkSize");

  private final String name;
  private final S3ObjectStore.Config config;
  private final KeyEncryptionKey kek;
  private final int chunkSize;

  public ObjectStoreSite(String name, S3ObjectStore.Config config, KeyEncryptionKey kek,
      int chunkSize) {
    if (!isSiteName(name)) {
      throw new IllegalArgumentException("not a site name: '" + name + "'");
    }
    this.name = name;
    this.config = config;
    this.kek = kek;
    this.chunkSize = chunkSize;
  }

  /** Whether {@code name} may name an object-store site (and so a file named after it). */
  public static boolean isSiteName(String name) {
    return name != null && SITE.matcher(name).matches();
  }

  /** Reads a site's file, with credentials from the named files or the process environment. */
  public static ObjectStoreSite load(String name, Path file) {
    return load(name, file, System::getenv);
  }

  /** As {@link #load(String, Path)}, reading environment variables through {@code env}. */
  public static ObjectStoreSite load(String name, Path file, UnaryOperator<String> env) {
    String where = "object store '" + name + "' (" + file + ")";
    if (!isSiteName(name)) {
      throw new IllegalArgumentException(where + ": not a site name");
    }
    JsonNode root;
    try {
      if (Files.size(file) > MAX_FILE_BYTES) {
        throw new IllegalArgumentException(where + ": larger than " + MAX_FILE_BYTES + " bytes");
      }
      root = Json.MAPPER.readTree(file.toFile());
    } catch (IOException e) {
      throw new IllegalArgumentException(where + ": not readable as JSON ("
          + e.getClass().getSimpleName() + ")");
    }
    if (root == null || !root.isObject()) {
      throw new IllegalArgumentException(where + ": not a JSON object");
    }
    for (Iterator<String> it = root.fieldNames(); it.hasNext(); ) {
      String field = it.next();
      if (!FIELDS.contains(field)) {
        throw new IllegalArgumentException(where + ": field '" + field + "' is not known (known: "
            + new java.util.TreeSet<>(FIELDS) + ")");
      }
    }
    Fields f = new Fields(where, root, file.toAbsolutePath().getParent());
    URI endpoint = f.endpoint();
    String region = f.text("region", true);
    if (!REGION.matcher(region).matches()) {
      throw f.bad("region", "1 to 32 of [a-z0-9-]");
    }
    String bucket = f.text("bucket", true);
    String prefix = root.has("prefix") ? f.text("prefix", false) : "";
    String accessKey = f.credential("accessKeyFile", "accessKeyEnv", env);
    String secretKey = f.credential("secretKeyFile", "secretKeyEnv", env);
    KeyEncryptionKey kek;
    Path kekFile = f.path("kekFile");
    try {
      kek = KeyEncryptionKey.fromFile(kekFile);
    } catch (IOException e) {
      throw f.bad("kekFile", "not a key file of 32 raw bytes or 64 hex digits");
    }
    int chunkSize = 4 << 20;
    if (root.has("chunkSize")) {
      JsonNode n = root.get("chunkSize");
      if (!n.canConvertToInt() || !n.isIntegralNumber() || n.intValue() < (64 << 10)
          || n.intValue() > (64 << 20) || Integer.bitCount(n.intValue()) != 1) {
        throw f.bad("chunkSize", "a power of two from 65536 to 67108864");
      }
      chunkSize = n.intValue();
    }
    S3ObjectStore.Config config;
    try {
      S3ObjectStore.Config.of(endpoint, region, bucket, "", accessKey, secretKey);
    } catch (IllegalArgumentException e) {
      throw f.bad("bucket", "not a bucket name (3 to 63 of [a-z0-9.-])");
    }
    try {
      config = S3ObjectStore.Config.of(endpoint, region, bucket, prefix, accessKey, secretKey);
    } catch (IllegalArgumentException e) {
      throw f.bad("prefix", "empty, or path segments of [A-Za-z0-9._-] each ending in '/'");
    }
    return new ObjectStoreSite(name, config, kek, chunkSize);
  }

  public String name() {
    return name;
  }

  /** The store's configuration, credentials included: for opening the store, never to show. */
  public S3ObjectStore.Config config() {
    return config;
  }

  public KeyEncryptionKey kek() {
    return kek;
  }

  public int chunkSize() {
    return chunkSize;
  }

  @Override
  public String toString() {
    return "object store " + name + " (" + config.endpoint() + ", bucket " + config.bucket()
        + ", prefix '" + config.prefix() + "', key " + kek.id() + ")";
  }

  /** Reads the file's fields, each error naming its field. */
  private record Fields(String where, JsonNode root, Path baseDir) {
    IllegalArgumentException bad(String field, String what) {
      return new IllegalArgumentException(where + ": field '" + field + "': " + what);
    }

    String text(String field, boolean required) {
      JsonNode n = root.get(field);
      if (n == null || n.isNull()) {
        if (required) {
          throw bad(field, "is required");
        }
        return "";
      }
      if (!n.isTextual() || n.textValue().length() > 1024) {
        throw bad(field, "must be a string of at most 1024 characters");
      }
      if (required && n.textValue().isBlank()) {
        throw bad(field, "must not be empty");
      }
      return n.textValue();
    }

    URI endpoint() {
      String text = text("endpoint", true);
      try {
        URI uri = new URI(text);
        if (!("https".equals(uri.getScheme()) || "http".equals(uri.getScheme()))
            || uri.getHost() == null || uri.getUserInfo() != null || uri.getQuery() != null) {
          throw bad("endpoint", "an http:// or https:// URL with a host and no user or query");
        }
        return uri;
      } catch (URISyntaxException e) {
        throw bad("endpoint", "not a URL");
      }
    }

    /** A relative path is taken from the site file's folder. */
    Path path(String field) {
      Path p = Path.of(text(field, true));
      Path resolved = p.isAbsolute() || baseDir == null ? p : baseDir.resolve(p);
      if (!Files.isRegularFile(resolved) || !Files.isReadable(resolved)) {
        throw bad(field, "no readable file at " + resolved);
      }
      return resolved;
    }

    String credential(String fileField, String envField, UnaryOperator<String> env) {
      boolean inFile = root.has(fileField);
      boolean inEnv = root.has(envField);
      if (inFile == inEnv) {
        throw bad(fileField, "give exactly one of '" + fileField + "' and '" + envField + "'");
      }
      String value;
      if (inFile) {
        Path file = path(fileField);
        try {
          if (Files.size(file) > MAX_CREDENTIAL_BYTES) {
            throw bad(fileField, "larger than " + MAX_CREDENTIAL_BYTES + " bytes");
          }
          value = Files.readString(file, StandardCharsets.UTF_8).strip();
        } catch (IOException e) {
          throw bad(fileField, "not readable");
        }
        if (value.isEmpty()) {
          throw bad(fileField, "the file is empty");
        }
      } else {
        String variable = text(envField, true);
        if (!ENV.matcher(variable).matches()) {
          throw bad(envField, "not an environment variable name");
        }
        value = env.apply(variable);
        if (value == null || value.isBlank()) {
          throw bad(envField, "the environment variable " + variable + " is not set");
        }
        value = value.strip();
      }
      if (value.length() > MAX_CREDENTIAL_BYTES
          || value.chars().anyMatch(c -> c < 0x21 || c > 0x7e)) {
        throw bad(inFile ? fileField : envField, "a credential is printable ASCII without spaces");
      }
      return value;
    }
  }
}
