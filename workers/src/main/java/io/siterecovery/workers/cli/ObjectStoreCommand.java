package io.siterecovery.workers.cli;

import io.siterecovery.agent.DurableFiles;
import io.siterecovery.agent.Json;
import io.siterecovery.agent.objectstore.KeyEncryptionKey;
import io.siterecovery.agent.objectstore.S3ObjectStore;
import io.siterecovery.agent.objectstore.SealedObjects;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import java.io.IOException;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.UUID;
import java.util.concurrent.Callable;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(name = "object-store", description = "An object-store site's file, as every agent that "
    + "ships to the bucket or recovers from it reads it (--object-store SITE=FILE): init writes "
    + "one with a new key-encryption key, check proves it against the bucket.",
    subcommands = {ObjectStoreCommand.Init.class, ObjectStoreCommand.Check.class})
final class ObjectStoreCommand {
  /** A probe's size: cheap, yet sealed, stored and read back as any object of the layout. */
  private static final int PROBE_BYTES = 4096;

  @Command(name = "init", description = "Write DIR/SITE.json and a new key-encryption key "
      + "DIR/SITE-kek.hex (both owner-only), checked as an agent loads them; the credentials "
      + "stay in the files or variables named. Prints the key's id and the worker's objectStores "
      + "entry. Never replaces a key: one in use seals every object of the bucket.")
  static final class Init implements Callable<Integer> {
    @Option(names = "--dir", required = true, description = "folder for the two files")
    Path dir;

    @Option(names = "--site", required = true, description = "the object-store site's name, as "
        + "in the worker's sites and objectStores")
    String site;

    @Option(names = "--endpoint", required = true, description = "the S3 endpoint, e.g. "
        + "https://s3.eu-west-1.amazonaws.com")
    URI endpoint;

    @Option(names = "--bucket", required = true, description = "the bucket (it must exist)")
    String bucket;

    @Option(names = "--region", defaultValue = "us-east-1", description = "the bucket's region "
        + "(default: ${DEFAULT-VALUE})")
    String region;

    @Option(names = "--prefix", description = "a folder of the bucket for this deployment, "
        + "ending in '/' (default: the bucket's root)")
    String prefix;

    @ArgGroup(exclusive = true, multiplicity = "1")
    Credentials credentials;

    static final class Credentials {
      @ArgGroup(exclusive = false)
      KeyFiles files;

      @ArgGroup(exclusive = false)
      KeyVariables variables;
    }

    static final class KeyFiles {
      @Option(names = "--access-key-file", required = true, description = "file holding the "
          + "access key id (owner-only)")
      Path accessKey;

      @Option(names = "--secret-key-file", required = true, description = "file holding the "
          + "secret access key (owner-only)")
      Path secretKey;
    }

    static final class KeyVariables {
      @Option(names = "--access-key-env", required = true, description = "environment variable "
          + "holding the access key id, in the agent's environment")
      String accessKey;

      @Option(names = "--secret-key-env", required = true, description = "environment variable "
          + "holding the secret access key")
      String secretKey;
    }

    @Override
    public Integer call() throws IOException {
      if (!ObjectStoreSite.isSiteName(site)) {
        System.err.println("error: --site: 1 to 64 of [A-Za-z0-9_.-], starting with a letter or "
            + "digit");
        return 1;
      }
      Path siteFile = dir.resolve(site + ".json");
      Path kekFile = dir.resolve(site + "-kek.hex");
      for (Path existing : new Path[] {siteFile, kekFile}) {
        if (Files.exists(existing)) {
          System.err.println("error: " + existing + " exists; nothing written. A key in use "
              + "seals every object in the bucket and a new one could not open them: keep it, "
              + "or move the files away yourself to start a new site");
          return 1;
        }
      }
      Files.createDirectories(dir);
      Map<String, Object> fields = new LinkedHashMap<>();
      fields.put("endpoint", endpoint.toString());
      fields.put("region", region);
      fields.put("bucket", bucket);
      if (prefix != null) {
        fields.put("prefix", prefix);
      }
      if (credentials.files != null) {
        fields.put("accessKeyFile", credentials.files.accessKey.toAbsolutePath().toString());
        fields.put("secretKeyFile", credentials.files.secretKey.toAbsolutePath().toString());
      } else {
        fields.put("accessKeyEnv", credentials.variables.accessKey);
        fields.put("secretKeyEnv", credentials.variables.secretKey);
      }
      fields.put("kekFile", kekFile.getFileName().toString());
      byte[] key = new byte[KeyEncryptionKey.LENGTH];
      new SecureRandom().nextBytes(key);
      ObjectStoreSite loaded;
      try {
        DurableFiles.writeOwnerOnly(kekFile,
            (HexFormat.of().formatHex(key) + "\n").getBytes(StandardCharsets.US_ASCII));
        DurableFiles.writeOwnerOnly(siteFile,
            Json.MAPPER.writerWithDefaultPrettyPrinter().writeValueAsBytes(fields));
        // Variables are the agent's environment, maybe not this shell's: a variable unset here
        // is taken as set, so the file is checked whole; `check` on the agent's host proves them.
        loaded = ObjectStoreSite.load(site, siteFile, name -> {
          String value = System.getenv(name);
          return value != null ? value : "set-in-the-agents-environment";
        });
      } catch (IOException | RuntimeException e) {
        // Nothing half-made stays: a key file without its site is a key nobody knows to keep.
        Files.deleteIfExists(siteFile);
        Files.deleteIfExists(kekFile);
        throw e;
      } finally {
        Arrays.fill(key, (byte) 0);
      }
      System.out.printf("wrote %s and the key-encryption key %s (key id %s)%n", siteFile,
          kekFile, loaded.kek().id());
      System.out.printf("copy both to every agent that ships to %s or recovers from it, and keep "
          + "a copy of the key offline: without it no point in the bucket can be read%n", site);
      printWorkerEntry(loaded);
      System.out.printf("next: site-recovery object-store check --site %s %s%n", site, siteFile);
      return 0;
    }
  }

  @Command(name = "check", description = "Load FILE as an agent does, then write a sealed probe "
      + "object to the bucket, read it back, authenticate it and delete it: the endpoint, the "
      + "credentials, the bucket and the key work from this host. Prints the worker's "
      + "objectStores entry.")
  static final class Check implements Callable<Integer> {
    @Option(names = "--site", required = true, description = "the object-store site's name")
    String site;

    @Parameters(index = "0", description = "the site file (init writes SITE.json)")
    Path file;

    @Override
    public Integer call() throws IOException {
      ObjectStoreSite loaded = ObjectStoreSite.load(site, file);
      System.out.println("site file: " + loaded + ", region " + loaded.config().region()
          + ", chunk size " + loaded.chunkSize());
      String probe = "probe/" + UUID.randomUUID() + ".probe";
      byte[] plain = new byte[PROBE_BYTES];
      new SecureRandom().nextBytes(plain);
      SealedObjects sealed = new SealedObjects(loaded.kek());
      String step = "writing the probe object " + probe;
      try (S3ObjectStore store = new S3ObjectStore(loaded.config())) {
        byte[] written = sealed.seal(probe, plain);
        store.put(probe, written);
        step = "reading the probe back";
        byte[] read = store.get(probe, written.length);
        step = "authenticating the probe with the key";
        if (!Arrays.equals(sealed.open(probe, read), plain)) {
          throw new IOException("the probe read back differs from what was written");
        }
        step = "deleting the probe";
        store.delete(probe);
      } catch (IOException | RuntimeException e) {
        System.err.println("error: " + step + " failed: "
            + (e.getMessage() != null ? e.getMessage() : e.toString()));
        return 1;
      }
      System.out.printf("wrote, read back, authenticated and deleted a sealed probe of %d bytes "
          + "in bucket %s: this host can ship to %s and recover from it%n", PROBE_BYTES,
          loaded.config().bucket(), site);
      printWorkerEntry(loaded);
      return 0;
    }
  }

  /** What the worker's configuration names, so that it checks every source agent against it. */
  private static void printWorkerEntry(ObjectStoreSite site) throws IOException {
    Map<String, String> entry = new LinkedHashMap<>();
    entry.put("endpoint", site.config().endpoint().toString());
    entry.put("bucket", site.config().bucket());
    entry.put("prefix", site.config().prefix());
    entry.put("keyId", site.kek().id());
    System.out.println("the worker's configuration: \"objectStores\": "
        + Json.MAPPER.writeValueAsString(Map.of(site.name(), entry))
        + " (and the recovery host's agent URL in \"sites\")");
  }
}
