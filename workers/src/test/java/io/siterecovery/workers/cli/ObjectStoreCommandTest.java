package io.siterecovery.workers.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.siterecovery.agent.objectstore.KeyEncryptionKey;
import io.siterecovery.agent.objectstore.ship.ObjectStoreSite;
import io.siterecovery.workers.dev.CloudBucket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code object-store init} and {@code check} against s3proxy in process (the bucket of
 * {@code dev}'s site cloud, with its credentials): the files an agent loads, a key never
 * replaced, and a probe that proves endpoint, credentials, bucket and key or names the step that
 * failed.
 */
class ObjectStoreCommandTest {
  @TempDir Path tmp;
  private CloudBucket bucket;

  @BeforeEach
  void startTheBucket() throws Exception {
    bucket = CloudBucket.start(tmp.resolve("s3"), 0);
  }

  @AfterEach
  void stopTheBucket() throws Exception {
    bucket.close();
  }

  private CliRun init(Path dir, String bucketName, Path secretKeyFile) {
    return CliRun.of("object-store", "init", "--dir", dir.toString(), "--site", "cloud",
        "--endpoint", bucket.endpoint().toString(), "--bucket", bucketName,
        "--prefix", "site-a/", "--access-key-file", tmp.resolve("s3/access-key").toString(),
        "--secret-key-file", secretKeyFile.toString());
  }

  @Test
  void initWritesAKeyAndASiteFileThatCheckProvesAgainstTheBucket() throws Exception {
    Path dir = tmp.resolve("conf");
    CliRun made = init(dir, CloudBucket.BUCKET, tmp.resolve("s3/secret-key"));
    assertThat(made.exit()).as(made.err()).isZero();

    Path siteFile = dir.resolve("cloud.json");
    Path kekFile = dir.resolve("cloud-kek.hex");
    String keyId = KeyEncryptionKey.fromFile(kekFile).id();
    for (Path f : new Path[] {siteFile, kekFile}) {
      assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(f)))
          .as("%s owner-only", f).isEqualTo("rw-------");
    }
    ObjectStoreSite site = ObjectStoreSite.load("cloud", siteFile);
    assertThat(site.kek().id()).isEqualTo(keyId);
    assertThat(site.config().prefix()).isEqualTo("site-a/");
    assertThat(made.out()).contains("key id " + keyId)
        .contains("\"objectStores\": {\"cloud\":{\"endpoint\":\"" + bucket.endpoint()
            + "\",\"bucket\":\"" + CloudBucket.BUCKET + "\",\"prefix\":\"site-a/\",\"keyId\":\""
            + keyId + "\"}}");

    CliRun checked = CliRun.of("object-store", "check", "--site", "cloud", siteFile.toString());
    assertThat(checked.exit()).as(checked.err()).isZero();
    assertThat(checked.out()).contains("wrote, read back, authenticated and deleted a sealed "
        + "probe of 4096 bytes in bucket " + CloudBucket.BUCKET).contains(keyId);
    try (Stream<Path> left = Files.walk(bucket.storeDir())) {
      assertThat(left.filter(Files::isRegularFile).toList()).as("nothing left in the bucket")
          .isEmpty();
    }

    byte[] key = Files.readAllBytes(kekFile);
    CliRun again = init(dir, CloudBucket.BUCKET, tmp.resolve("s3/secret-key"));
    assertThat(again.exit()).isEqualTo(1);
    assertThat(again.err()).contains("exists; nothing written");
    assertThat(Files.readAllBytes(kekFile)).as("the key in use is kept").isEqualTo(key);
  }

  /**
   * Credentials in variables are the agent's environment, maybe not the shell running init: init
   * writes the file, and check, run where a variable is not set, says which.
   */
  @Test
  void credentialsInVariablesAreTheAgentsToSetAndCheckNamesAMissingOne() {
    String variable = "SITE_RECOVERY_TEST_UNSET_" + Long.toHexString(System.nanoTime());
    Path dir = tmp.resolve("conf");
    CliRun made = CliRun.of("object-store", "init", "--dir", dir.toString(), "--site", "cloud",
        "--endpoint", bucket.endpoint().toString(), "--bucket", CloudBucket.BUCKET,
        "--access-key-env", variable, "--secret-key-env", variable + "_SECRET");
    assertThat(made.exit()).as(made.err()).isZero();
    CliRun checked = CliRun.of("object-store", "check", "--site", "cloud",
        dir.resolve("cloud.json").toString());
    assertThat(checked.exit()).isNotZero();
    assertThat(checked.err()).contains("field 'accessKeyEnv': the environment variable "
        + variable + " is not set");
  }

  @Test
  void checkNamesTheStepThatFailedAndInitLeavesNothingOfABadSite() throws Exception {
    Path wrongSecret = Files.writeString(tmp.resolve("wrong-secret"), "not-the-secret");
    Path dir = tmp.resolve("conf");
    assertThat(init(dir, CloudBucket.BUCKET, wrongSecret).exit()).isZero();
    CliRun refused = CliRun.of("object-store", "check", "--site", "cloud",
        dir.resolve("cloud.json").toString());
    assertThat(refused.exit()).isEqualTo(1);
    assertThat(refused.err()).contains("error: writing the probe object probe/")
        .contains("403");

    Path bad = tmp.resolve("bad");
    CliRun badBucket = init(bad, "Not_A_Bucket", tmp.resolve("s3/secret-key"));
    assertThat(badBucket.exit()).isNotZero();
    assertThat(badBucket.err()).contains("field 'bucket'");
    try (Stream<Path> left = Files.list(bad)) {
      assertThat(left.toList()).as("no key without its site").isEmpty();
    }
    CliRun escaping = CliRun.of("object-store", "init", "--dir", bad.toString(), "--site",
        "../cloud", "--endpoint", bucket.endpoint().toString(), "--bucket", CloudBucket.BUCKET,
        "--access-key-env", "A", "--secret-key-env", "B");
    assertThat(escaping.exit()).isEqualTo(1);
    assertThat(escaping.err()).contains("--site: 1 to 64 of");
    assertThat(tmp.resolve("cloud.json")).doesNotExist();
  }
}
