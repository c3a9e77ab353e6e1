package io.siterecovery.agent.resync;

import java.lang.reflect.Field;
import java.nio.Buffer;
import java.nio.ByteBuffer;
import sun.misc.Unsafe;

/**
 * The native address of a direct buffer, so that XXH3 reads it in place. zero-allocation-hashing
 * gets it through {@code sun.nio.ch.DirectBuffer}, which Java 17 does not export: its
 * {@code hashBytes(ByteBuffer)} throws {@link IllegalAccessError} on a direct buffer unless the
 * JVM runs with {@code --add-exports}, and its portable {@code ByteBuffer} access measured four
 * to six times slower than {@code hashMemory(address, length)}. So the address is read from the
 * private field {@code java.nio.Buffer.address} through {@code sun.misc.Unsafe} (module
 * jdk.unsupported, open to all; the hashing library relies on it anyway), as Netty does. Should a
 * future JDK refuse that, {@link #of} answers 0 and callers take the portable path.
 */
final class DirectAddress {
  private static final Unsafe UNSAFE;
  private static final long ADDRESS_FIELD;

  static {
    Unsafe unsafe = null;
    long offset = -1;
    try {
      Field f = Unsafe.class.getDeclaredField("theUnsafe");
      f.setAccessible(true);
      unsafe = (Unsafe) f.get(null);
      offset = unsafe.objectFieldOffset(Buffer.class.getDeclaredField("address"));
    } catch (ReflectiveOperationException | RuntimeException e) {
      unsafe = null;
    }
    UNSAFE = unsafe;
    ADDRESS_FIELD = offset;
  }

  private DirectAddress() {}

  /** The address of {@code buffer}'s element 0, or 0 for a heap buffer or when unavailable. */
  static long of(ByteBuffer buffer) {
    if (UNSAFE == null || !buffer.isDirect()) {
      return 0;
    }
    return UNSAFE.getLong(buffer, ADDRESS_FIELD);
  }
}
