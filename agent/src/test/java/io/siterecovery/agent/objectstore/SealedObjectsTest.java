package io.siterecovery.agent.objectstore;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SealedObjectsTest {
  private static final int SEGMENT = 4096;
  private final KeyEncryptionKey kek = new KeyEncryptionKey(bytes(32, 1));
  private final SealedObjects sealed = new SealedObjects(kek, SEGMENT);

  @Test
  void opensWhatItSealedAtEverySegmentBoundary() throws Exception {
    for (int length : new int[] {0, 1, SEGMENT - 1, SEGMENT, SEGMENT + 1, 5 * SEGMENT + 7}) {
      byte[] plain = bytes(length, length);
      byte[] object = sealed.seal("vms/a/disk-0/chunk-1", plain);
      assertThat(object).hasSize((int) sealed.sealedLength("vms/a/disk-0/chunk-1", length));
      assertThat(sealed.open("vms/a/disk-0/chunk-1", object)).as("length %d", length)
          .isEqualTo(plain);
    }
  }

  @Test
  void theSamePlaintextSealsToDifferentBytes() {
    byte[] plain = bytes(1000, 3);
    assertThat(sealed.seal("k", plain)).isNotEqualTo(sealed.seal("k", plain));
  }

  @Test
  void everyFlippedByteIsANamedErrorNeverWrongBytes() {
    byte[] object = sealed.seal("vms/a/disk-0/log-1", bytes(2 * SEGMENT + 100, 4));
    for (int i = 0; i < object.length; i++) {
      byte[] damaged = object.clone();
      damaged[i] ^= 0x01;
      int at = i;
      assertThatThrownBy(() -> sealed.open("vms/a/disk-0/log-1", damaged)).as("byte %d", at)
          .isInstanceOf(SealedObjectException.class)
          .hasMessageContaining("vms/a/disk-0/log-1");
    }
  }

  @Test
  void aTruncatedOrExtendedObjectIsCorrupt() {
    byte[] object = sealed.seal("k", bytes(3 * SEGMENT, 5));
    for (int length = 0; length < object.length; length += 97) {
      byte[] cut = Arrays.copyOf(object, length);
      assertThatThrownBy(() -> sealed.open("k", cut)).isInstanceOf(ObjectCorruptException.class);
    }
    byte[] extended = Arrays.copyOf(object, object.length + 1);
    assertThatThrownBy(() -> sealed.open("k", extended))
        .isInstanceOf(ObjectCorruptException.class).hasMessageContaining("after the last segment");
  }

  @Test
  void anObjectUnderAnotherNameIsAMismatch() {
    byte[] object = sealed.seal("vms/b/disk-0/chunk-00000001-0000000000000000", bytes(100, 6));
    assertThatThrownBy(() -> sealed.open("vms/a/disk-0/chunk-00000001-0000000000000000", object))
        .isInstanceOf(ObjectMismatchException.class)
        .hasMessageContaining("it is the object vms/b/");
  }

  @Test
  void anObjectSealedUnderAnotherKeyIsAMismatch() {
    SealedObjects other = new SealedObjects(new KeyEncryptionKey(bytes(32, 2)), SEGMENT);
    byte[] object = other.seal("k", bytes(100, 7));
    assertThatThrownBy(() -> sealed.open("k", object))
        .isInstanceOf(ObjectMismatchException.class).hasMessageContaining("sealed under key");
  }

  @Test
  void readsAKeyFileRawOrHex(@TempDir Path dir) throws Exception {
    byte[] raw = bytes(32, 8);
    Path rawFile = Files.write(dir.resolve("raw.key"), raw);
    Path hexFile = Files.writeString(dir.resolve("hex.key"), HexFormat.of().formatHex(raw) + "\n");
    assertThat(KeyEncryptionKey.fromFile(rawFile).id()).isEqualTo(kekOf(raw).id())
        .isEqualTo(KeyEncryptionKey.fromFile(hexFile).id());
    Path shortFile = Files.write(dir.resolve("short.key"), bytes(16, 9));
    assertThatThrownBy(() -> KeyEncryptionKey.fromFile(shortFile))
        .hasMessageContaining("32 raw bytes or 64 hex digits");
    Path hugeFile = Files.write(dir.resolve("huge.key"), bytes(4096, 9));
    assertThatThrownBy(() -> KeyEncryptionKey.fromFile(hugeFile))
        .hasMessageContaining("not a key file");
    assertThat(kek.id()).doesNotContain(new String(raw, StandardCharsets.ISO_8859_1));
  }

  private static KeyEncryptionKey kekOf(byte[] raw) {
    return new KeyEncryptionKey(raw);
  }

  private static byte[] bytes(int length, long seed) {
    byte[] b = new byte[length];
    new Random(seed).nextBytes(b);
    return b;
  }
}
