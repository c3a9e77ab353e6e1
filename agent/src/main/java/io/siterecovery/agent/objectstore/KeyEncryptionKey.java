package io.siterecovery.agent.objectstore;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Arrays;
import java.util.HexFormat;
import javax.crypto.SecretKey;
import javax.crypto.spec.SecretKeySpec;

/**
 * The operator's key-encryption key (KEK): 32 bytes that wrap every object's data key. Its id is
 * a fingerprint (the first 8 bytes of SHA-256 over a label and the key), so an object says which
 * key sealed it without revealing anything usable about the key.
 */
public final class KeyEncryptionKey {
  public static final int LENGTH = 32;
  private static final long MAX_FILE_BYTES = 256;

  private final SecretKey key;
  private final String id;

  public KeyEncryptionKey(byte[] raw) {
    if (raw.length != LENGTH) {
      throw new IllegalArgumentException("a key-encryption key is " + LENGTH + " bytes, not "
          + raw.length);
    }
    this.key = new SecretKeySpec(raw.clone(), "AES");
    this.id = fingerprint(raw);
  }

  /**
   * Reads the key a key reference names: a file holding the 32 bytes raw, or as 64 hex digits
   * (with an optional trailing newline), as {@code head -c32 /dev/urandom} or {@code openssl rand
   * -hex 32} write it.
   */
  public static KeyEncryptionKey fromFile(Path file) throws IOException {
    long size = Files.size(file);
    if (size > MAX_FILE_BYTES) {
      throw new IOException(file + ": not a key file (" + size + " bytes)");
    }
    byte[] content = Files.readAllBytes(file);
    if (content.length == LENGTH) {
      return new KeyEncryptionKey(content);
    }
    String text = new String(content, StandardCharsets.US_ASCII).strip();
    if (text.length() == 2 * LENGTH && text.chars().allMatch(c -> Character.digit(c, 16) >= 0)) {
      return new KeyEncryptionKey(HexFormat.of().parseHex(text));
    }
    throw new IOException(file + ": a key file holds 32 raw bytes or 64 hex digits");
  }

  public String id() {
    return id;
  }

  SecretKey secretKey() {
    return key;
  }

  private static String fingerprint(byte[] raw) {
    try {
      MessageDigest sha = MessageDigest.getInstance("SHA-256");
      sha.update("site-recovery kek id\0".getBytes(StandardCharsets.US_ASCII));
      return HexFormat.of().formatHex(Arrays.copyOf(sha.digest(raw), 8));
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException(e);
    }
  }
}
