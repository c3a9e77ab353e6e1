package io.siterecovery.agent.objectstore;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.SecureRandom;
import java.util.Arrays;
import javax.crypto.AEADBadTagException;
import javax.crypto.Cipher;
import javax.crypto.KeyGenerator;
import javax.crypto.SecretKey;
import javax.crypto.spec.GCMParameterSpec;

/**
 * The sealed-object format: what every object in the bucket is. The plaintext is cut into
 * segments, each encrypted with AES-256-GCM under a data key drawn fresh for the object; the data
 * key is wrapped (AES key wrap, RFC 3394) by the operator's {@link KeyEncryptionKey}. Every
 * segment's additional authenticated data is the whole header (magic, version, segment size,
 * plaintext length, nonce, key id, wrapped key, object name) followed by the segment's index, so
 * a flipped byte anywhere, a truncated or extended object, reordered segments, or an object
 * moved to another name all fail, each with a named exception, and no unauthenticated byte is
 * ever returned. Segments (rather than one GCM message) keep memory bounded for large objects
 * and let a byte range be read and authenticated alone.
 *
 * <pre>
 * magic "SROBJ001" | version u32 | segment size u32 | plaintext length u64 | nonce 12 bytes
 * | key id (u16 length, ASCII) | wrapped data key (u16 length, bytes) | name (u16 length, UTF-8)
 * | segment 0 ciphertext + 16-byte tag | segment 1 ... (big-endian integers)
 * </pre>
 */
public final class SealedObjects {
  static final byte[] MAGIC = {'S', 'R', 'O', 'B', 'J', '0', '0', '1'};
  static final int VERSION = 1;
  public static final int DEFAULT_SEGMENT_SIZE = 1 << 20;
  static final int MIN_SEGMENT_SIZE = 4096;
  static final int MAX_SEGMENT_SIZE = 16 << 20;
  static final int MAX_NAME_BYTES = 1024;
  private static final int MAX_KEY_ID_BYTES = 64;
  private static final int MAX_WRAPPED_KEY_BYTES = 64;
  private static final long MAX_PLAINTEXT = 1L << 42;
  private static final int NONCE_BYTES = 12;
  private static final int TAG_BYTES = 16;
  private static final int UPDATE_BYTES = 16 << 10;

  private final KeyEncryptionKey kek;
  private final int segmentSize;
  private final SecureRandom random = new SecureRandom();

  public SealedObjects(KeyEncryptionKey kek) {
    this(kek, DEFAULT_SEGMENT_SIZE);
  }

  public SealedObjects(KeyEncryptionKey kek, int segmentSize) {
    if (segmentSize < MIN_SEGMENT_SIZE || segmentSize > MAX_SEGMENT_SIZE) {
      throw new IllegalArgumentException("segment size out of range: " + segmentSize);
    }
    this.kek = kek;
    this.segmentSize = segmentSize;
  }

  private record Header(int segmentSize, long plainLength, byte[] nonce, String keyId,
      byte[] wrappedKey, String name) {

    byte[] encode() {
      ByteArrayOutputStream bytes = new ByteArrayOutputStream(128 + name.length());
      try (DataOutputStream out = new DataOutputStream(bytes)) {
        out.write(MAGIC);
        out.writeInt(VERSION);
        out.writeInt(segmentSize);
        out.writeLong(plainLength);
        out.write(nonce);
        writeField(out, keyId.getBytes(StandardCharsets.US_ASCII));
        writeField(out, wrappedKey);
        writeField(out, name.getBytes(StandardCharsets.UTF_8));
      } catch (IOException e) {
        throw new IllegalStateException(e);
      }
      return bytes.toByteArray();
    }

    long segments() {
      return Math.max(1, (plainLength + segmentSize - 1) / segmentSize);
    }

    int segmentLength(long index) {
      return (int) Math.min(segmentSize, plainLength - index * segmentSize);
    }

    private static void writeField(DataOutputStream out, byte[] value) throws IOException {
      out.writeShort(value.length);
      out.write(value);
    }
  }

  /** The size of the sealed object for a plaintext of {@code plainLength} bytes named {@code name}. */
  public long sealedLength(String name, long plainLength) {
    Header header = new Header(segmentSize, plainLength, new byte[NONCE_BYTES], kek.id(),
        new byte[40], name);
    return header.encode().length + plainLength + header.segments() * TAG_BYTES;
  }

  public byte[] seal(String name, byte[] plain) {
    ByteArrayOutputStream out =
        new ByteArrayOutputStream((int) Math.min(sealedLength(name, plain.length), 1 << 30));
    try {
      seal(name, new ByteArrayInputStream(plain), plain.length, out);
    } catch (IOException e) {
      throw new IllegalStateException(e);
    }
    return out.toByteArray();
  }

  /** Seals exactly {@code length} bytes read from {@code in} as the object {@code name}. */
  public void seal(String name, InputStream in, long length, OutputStream out) throws IOException {
    byte[] nameBytes = name.getBytes(StandardCharsets.UTF_8);
    if (nameBytes.length == 0 || nameBytes.length > MAX_NAME_BYTES) {
      throw new IllegalArgumentException("object name length out of range: " + name);
    }
    if (length < 0 || length > MAX_PLAINTEXT) {
      throw new IllegalArgumentException("object length out of range: " + length);
    }
    try {
      KeyGenerator generator = KeyGenerator.getInstance("AES");
      generator.init(256, random);
      SecretKey dataKey = generator.generateKey();
      Cipher wrap = Cipher.getInstance("AESWrap");
      wrap.init(Cipher.WRAP_MODE, kek.secretKey());
      byte[] nonce = new byte[NONCE_BYTES];
      random.nextBytes(nonce);
      Header header = new Header(segmentSize, length, nonce, kek.id(), wrap.wrap(dataKey), name);
      byte[] headerBytes = header.encode();
      out.write(headerBytes);
      Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
      byte[] plain = new byte[(int) Math.min(segmentSize, Math.max(length, 1))];
      byte[] sealed = new byte[plain.length + TAG_BYTES];
      for (long i = 0; i < header.segments(); i++) {
        int n = header.segmentLength(i);
        if (in.readNBytes(plain, 0, n) < n) {
          throw new EOFException(name + ": the input ended before " + length + " bytes");
        }
        gcm.init(Cipher.ENCRYPT_MODE, dataKey, segmentNonce(nonce, i));
        gcm.updateAAD(headerBytes);
        gcm.updateAAD(indexBytes(i));
        // Small updates: the JIT compiles AES-GCM's intrinsic after enough calls, not bytes, so
        // one call per 1 MiB segment ran interpreted for the first gigabytes (4x slower here).
        int written = 0;
        for (int from = 0; from < n; from += UPDATE_BYTES) {
          written += gcm.update(plain, from, Math.min(UPDATE_BYTES, n - from), sealed, written);
        }
        written += gcm.doFinal(sealed, written);
        out.write(sealed, 0, written);
      }
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("JDK AES-GCM unavailable", e);
    }
  }

  public byte[] open(String name, byte[] sealed) throws IOException {
    ByteArrayOutputStream out = new ByteArrayOutputStream(Math.max(0, sealed.length - 128));
    open(name, new ByteArrayInputStream(sealed), out);
    return out.toByteArray();
  }

  /**
   * Authenticates and decrypts the object {@code name}. Segments are written to {@code out} as
   * each is authenticated, so on an exception what was written must be discarded: a caller
   * writes into a scratch file it deletes on failure.
   */
  public void open(String name, InputStream sealedIn, OutputStream out) throws IOException {
    DataInputStream in = new DataInputStream(sealedIn);
    Header header = readHeader(name, in);
    byte[] headerBytes = header.encode();
    SecretKey dataKey = unwrap(name, header);
    try {
      Cipher gcm = Cipher.getInstance("AES/GCM/NoPadding");
      byte[] sealed = new byte[(int) Math.min(header.segmentSize(),
          Math.max(header.plainLength(), 1)) + TAG_BYTES];
      byte[] plain = new byte[sealed.length];
      for (long i = 0; i < header.segments(); i++) {
        int n = header.segmentLength(i) + TAG_BYTES;
        readFully(in, sealed, n, name);
        gcm.init(Cipher.DECRYPT_MODE, dataKey, segmentNonce(header.nonce(), i));
        gcm.updateAAD(headerBytes);
        gcm.updateAAD(indexBytes(i));
        int plainBytes;
        try {
          plainBytes = gcm.doFinal(sealed, 0, n, plain, 0);
        } catch (AEADBadTagException e) {
          throw new ObjectCorruptException(name, "segment " + i + " fails authentication");
        }
        // Only an authentic header may say whose object this is: checked after segment 0.
        if (i == 0 && !header.name().equals(name)) {
          throw new ObjectMismatchException(name, "it is the object " + header.name());
        }
        out.write(plain, 0, plainBytes);
      }
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("JDK AES-GCM unavailable", e);
    }
    if (in.read() != -1) {
      throw new ObjectCorruptException(name, "bytes after the last segment");
    }
  }

  private Header readHeader(String name, DataInputStream in) throws IOException {
    try {
      byte[] magic = new byte[MAGIC.length];
      in.readFully(magic);
      if (!Arrays.equals(magic, MAGIC)) {
        throw new ObjectCorruptException(name, "not a sealed object (bad magic)");
      }
      int version = in.readInt();
      if (version != VERSION) {
        throw new ObjectCorruptException(name, "unsupported version " + version);
      }
      int segment = in.readInt();
      long plainLength = in.readLong();
      if (segment < MIN_SEGMENT_SIZE || segment > MAX_SEGMENT_SIZE || plainLength < 0
          || plainLength > MAX_PLAINTEXT) {
        throw new ObjectCorruptException(name, "header out of range");
      }
      byte[] nonce = new byte[NONCE_BYTES];
      in.readFully(nonce);
      String keyId = new String(readField(name, in, MAX_KEY_ID_BYTES),
          StandardCharsets.US_ASCII);
      byte[] wrapped = readField(name, in, MAX_WRAPPED_KEY_BYTES);
      String objectName = new String(readField(name, in, MAX_NAME_BYTES), StandardCharsets.UTF_8);
      return new Header(segment, plainLength, nonce, keyId, wrapped, objectName);
    } catch (EOFException e) {
      throw new ObjectCorruptException(name, "truncated header");
    }
  }

  private SecretKey unwrap(String name, Header header) throws IOException {
    if (!header.keyId().equals(kek.id())) {
      throw new ObjectMismatchException(name, "sealed under key " + header.keyId()
          + ", the configured key is " + kek.id());
    }
    try {
      Cipher unwrap = Cipher.getInstance("AESWrap");
      unwrap.init(Cipher.UNWRAP_MODE, kek.secretKey());
      return (SecretKey) unwrap.unwrap(header.wrappedKey(), "AES", Cipher.SECRET_KEY);
    } catch (java.security.InvalidKeyException e) {
      throw new ObjectCorruptException(name, "the wrapped data key fails its integrity check");
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("JDK AES key wrap unavailable", e);
    }
  }

  private static byte[] readField(String name, DataInputStream in, int max) throws IOException {
    int length = in.readUnsignedShort();
    if (length > max) {
      throw new ObjectCorruptException(name, "header field of " + length + " bytes");
    }
    byte[] value = new byte[length];
    in.readFully(value);
    return value;
  }

  private static void readFully(InputStream in, byte[] buffer, int length, String name)
      throws IOException {
    int done = in.readNBytes(buffer, 0, length);
    if (done < length) {
      throw new ObjectCorruptException(name, "truncated");
    }
  }

  /** Unique per segment under a data key used for one object only. */
  private static GCMParameterSpec segmentNonce(byte[] nonce, long index) {
    ByteBuffer b = ByteBuffer.wrap(nonce.clone());
    b.putLong(4, b.getLong(4) ^ index);
    return new GCMParameterSpec(TAG_BYTES * 8, b.array());
  }

  private static byte[] indexBytes(long index) {
    return ByteBuffer.allocate(Long.BYTES).putLong(index).array();
  }
}
