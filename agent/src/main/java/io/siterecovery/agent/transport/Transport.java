package io.siterecovery.agent.transport;

import com.github.luben.zstd.Zstd;
import com.github.luben.zstd.ZstdCompressCtx;
import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import io.siterecovery.agent.api.AgentMessages.TransferOptions;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InterruptedIOException;

/**
 * How an agent-to-agent body (initial-copy and resync ranges, sealed logs) is put on the wire:
 * optionally zstd-compressed, announced with {@code Content-Encoding: zstd} so the receiver
 * decodes it, and optionally paced by a token bucket. The sender compresses first and paces the
 * compressed bytes, so the cap is on what crosses the link.
 */
public final class Transport {
  public static final String CONTENT_ENCODING = "Content-Encoding";
  public static final String ZSTD = "zstd";
  /** Megabytes of {@link TransferOptions#bandwidthMBps()}: decimal, as link speeds are. */
  public static final double MB = 1_000_000.0;
  /** Level 1: the fastest standard level, already good on disk data; the link is the bottleneck. */
  static final int LEVEL = 1;
  /** Each chunk of the body becomes one zstd frame; concatenated frames are one valid stream. */
  static final int FRAME_INPUT = 1 << 20;

  private Transport() {}

  /** Refuses options that cannot be honoured, before any byte is sent. */
  public static TransferOptions validate(TransferOptions t) {
    TransferOptions options = TransferOptions.orDefault(t);
    Double rate = options.bandwidthMBps();
    if (rate != null && (!(rate > 0) || rate.isInfinite())) {
      throw new AgentException(ErrorCode.BAD_REQUEST,
          "bandwidthMBps must be a positive number of MB/s, or absent for no limit; got " + rate);
    }
    return options;
  }

  /** The {@code Content-Encoding} to announce for a body sent with these options, or null. */
  public static String contentEncoding(TransferOptions t) {
    return TransferOptions.orDefault(t).compress() ? ZSTD : null;
  }

  /** The bytes to put on the wire for {@code raw}: compressed and/or paced as asked. */
  public static InputStream encode(InputStream raw, TransferOptions t) {
    TransferOptions options = validate(t);
    InputStream out = raw;
    if (options.compress()) {
      out = new ZstdFrames(out);
    }
    if (options.bandwidthMBps() != null) {
      out = new Paced(out, new TokenBucket(options.bandwidthMBps() * MB, TokenBucket.SYSTEM));
    }
    return out;
  }

  /** The body as the sender meant it, given the request's {@code Content-Encoding}. */
  public static InputStream decode(InputStream wire, String contentEncoding) throws IOException {
    if (contentEncoding == null || contentEncoding.isBlank()
        || contentEncoding.equalsIgnoreCase("identity")) {
      return wire;
    }
    if (!contentEncoding.trim().equalsIgnoreCase(ZSTD)) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "unsupported Content-Encoding '"
          + contentEncoding + "' (this agent reads zstd or identity)");
    }
    return new Unzstd(wire);
  }

  /**
   * Pull-side zstd compressor: reads up to {@link #FRAME_INPUT} bytes of the source, emits them as
   * one zstd frame with a content checksum, and so on. The HTTP client pulls request bodies, and
   * the zstd stream API pushes, so framing chunk by chunk keeps compression on the pulling thread
   * without a pipe or a helper thread.
   */
  static final class ZstdFrames extends InputStream {
    private final InputStream source;
    private final ZstdCompressCtx ctx = new ZstdCompressCtx().setLevel(LEVEL).setChecksum(true);
    private final byte[] input = new byte[FRAME_INPUT];
    private final byte[] frame = new byte[(int) Zstd.compressBound(FRAME_INPUT)];
    private int pos;
    private int end;
    private boolean eof;

    ZstdFrames(InputStream source) {
      this.source = source;
    }

    private boolean fill() throws IOException {
      while (pos == end) {
        if (eof) {
          return false;
        }
        int n = source.readNBytes(input, 0, input.length);
        if (n < input.length) {
          eof = true;
        }
        if (n == 0) {
          continue;
        }
        end = ctx.compressByteArray(frame, 0, frame.length, input, 0, n);
        pos = 0;
      }
      return true;
    }

    @Override
    public int read() throws IOException {
      return fill() ? frame[pos++] & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (len == 0) {
        return 0;
      }
      if (!fill()) {
        return -1;
      }
      int n = Math.min(len, end - pos);
      System.arraycopy(frame, pos, b, off, n);
      pos += n;
      return n;
    }

    @Override
    public void close() throws IOException {
      try {
        source.close();
      } finally {
        ctx.close();
      }
    }
  }

  /**
   * The receiving side, frame by frame: each zstd frame is buffered whole, its size found from its
   * block headers, and decompressed with its content checksum checked. A body that ends inside a
   * frame, a damaged frame or one that is not zstd is a bad transfer (TRANSFER_CORRUPT, worth a
   * retry). zstd-jni's own ZstdInputStream is not used: it misses a body cut inside a frame whose
   * start arrived in the same read as the end of the previous one.
   */
  static final class Unzstd extends InputStream {
    /** Frames from other senders may be larger than ours; this bounds the memory one may take. */
    static final int MAX_FRAME_CONTENT = 16 << 20;
    private static final int ZSTD_MAGIC = 0xFD2FB528;
    private static final int SKIPPABLE_MAGIC = 0x184D2A50; // low 4 bits free

    private final InputStream wire;
    private final ZstdDecompressCtx ctx = new ZstdDecompressCtx();
    private byte[] in = new byte[(int) Zstd.compressBound(FRAME_INPUT) + 1024];
    private int inLen;
    private boolean wireEnded;
    private byte[] out = new byte[FRAME_INPUT];
    private int outPos;
    private int outEnd;

    Unzstd(InputStream wire) {
      this.wire = wire;
    }

    private boolean fill() throws IOException {
      while (outPos == outEnd) {
        long frame = inLen == 0 ? -1 : completeFrameSize();
        if (frame > 0) {
          decode((int) frame);
          continue;
        }
        if (wireEnded) {
          if (inLen == 0) {
            return false;
          }
          throw corrupt("the body ends inside a zstd frame (" + inLen + " bytes of it)", null);
        }
        if (inLen == in.length) {
          if (in.length >= Zstd.compressBound(MAX_FRAME_CONTENT)) {
            throw corrupt("a zstd frame larger than " + MAX_FRAME_CONTENT + " bytes", null);
          }
          in = java.util.Arrays.copyOf(in, (int) Math.min(2L * in.length,
              Zstd.compressBound(MAX_FRAME_CONTENT)));
        }
        int n = wire.read(in, inLen, in.length - inLen);
        if (n < 0) {
          wireEnded = true;
        } else {
          inLen += n;
        }
      }
      return true;
    }

    /** The size of the frame at the start of the buffer once it is all there, else -1. */
    private long completeFrameSize() {
      if (inLen >= 4) {
        int magic = (in[0] & 0xff) | (in[1] & 0xff) << 8 | (in[2] & 0xff) << 16 | in[3] << 24;
        if (magic != ZSTD_MAGIC && (magic & 0xFFFFFFF0) != SKIPPABLE_MAGIC) {
          throw corrupt("not a zstd frame", null);
        }
      }
      try {
        return Zstd.findFrameCompressedSize(in, 0, inLen);
      } catch (ZstdException incomplete) {
        return -1; // its blocks have not all arrived
      }
    }

    private void decode(int frameSize) {
      try {
        long content = Zstd.getFrameContentSize(in, 0, frameSize);
        if (content < 0 || content > MAX_FRAME_CONTENT) {
          throw corrupt("a zstd frame must declare its size, at most " + MAX_FRAME_CONTENT
              + " bytes", null);
        }
        if (out.length < content) {
          out = new byte[(int) content];
        }
        outEnd = content == 0 ? 0 : ctx.decompressByteArray(out, 0, (int) content, in, 0,
            frameSize);
        outPos = 0;
      } catch (ZstdException e) {
        throw corrupt(e.getMessage(), e);
      }
      System.arraycopy(in, frameSize, in, 0, inLen - frameSize);
      inLen -= frameSize;
    }

    @Override
    public int read() throws IOException {
      return fill() ? out[outPos++] & 0xff : -1;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      if (len == 0) {
        return 0;
      }
      if (!fill()) {
        return -1;
      }
      int n = Math.min(len, outEnd - outPos);
      System.arraycopy(out, outPos, b, off, n);
      outPos += n;
      return n;
    }

    @Override
    public void close() throws IOException {
      try {
        wire.close();
      } finally {
        ctx.close();
      }
    }

    private static AgentException corrupt(String problem, Throwable cause) {
      return new AgentException(ErrorCode.TRANSFER_CORRUPT,
          "compressed body damaged in transit: " + problem, cause);
    }
  }

  /** Releases the bytes of a stream no faster than its token bucket allows. */
  static final class Paced extends FilterInputStream {
    private final TokenBucket bucket;

    Paced(InputStream in, TokenBucket bucket) {
      super(in);
      this.bucket = bucket;
    }

    @Override
    public int read() throws IOException {
      int b = super.read();
      if (b >= 0) {
        bucket.acquire(1);
      }
      return b;
    }

    @Override
    public int read(byte[] b, int off, int len) throws IOException {
      int n = super.read(b, off, Math.min(len, bucket.maxChunk()));
      if (n > 0) {
        bucket.acquire(n);
      }
      return n;
    }
  }

  /**
   * A token bucket in bytes. Tokens accrue at {@code rate} bytes per second up to a small
   * capacity (50 ms worth, at least 4 KiB); the bucket starts empty. Taking more tokens than are
   * there leaves a debt that the caller sleeps off before its bytes go out. Over any window of
   * {@code w} seconds at most {@code rate * w + capacity + maxChunk} bytes pass, which is within
   * 10 % of the rate over 10 s for any rate above about 20 KB/s.
   */
  public static final class TokenBucket {
    /** Time source; tests drive a virtual clock. */
    public interface Clock {
      long nanoTime();

      void sleepNanos(long nanos) throws InterruptedException;
    }

    public static final Clock SYSTEM = new Clock() {
      @Override
      public long nanoTime() {
        return System.nanoTime();
      }

      @Override
      public void sleepNanos(long nanos) throws InterruptedException {
        Thread.sleep(nanos / 1_000_000, (int) (nanos % 1_000_000));
      }
    };

    private final double bytesPerNano;
    private final double capacity;
    private final int maxChunk;
    private final Clock clock;
    private double tokens;
    private long last;

    public TokenBucket(double bytesPerSecond, Clock clock) {
      this.bytesPerNano = bytesPerSecond / 1e9;
      this.capacity = Math.max(4096, bytesPerSecond * 0.05);
      this.maxChunk = (int) Math.min(64 << 10, Math.max(1024, capacity));
      this.clock = clock;
      this.last = clock.nanoTime();
    }

    /** The largest read worth pacing in one piece, so that releases stay smooth. */
    public int maxChunk() {
      return maxChunk;
    }

    /** Takes {@code n} tokens, sleeping until the debt they leave is paid. */
    public synchronized void acquire(long n) throws InterruptedIOException {
      long now = clock.nanoTime();
      tokens = Math.min(capacity, tokens + (now - last) * bytesPerNano);
      last = now;
      tokens -= n;
      if (tokens < 0) {
        long wait = (long) Math.ceil(-tokens / bytesPerNano);
        try {
          clock.sleepNanos(wait);
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new InterruptedIOException("interrupted while pacing a transfer");
        }
      }
    }
  }
}
