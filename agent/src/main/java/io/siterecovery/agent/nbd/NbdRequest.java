package io.siterecovery.agent.nbd;

import static io.siterecovery.agent.nbd.NbdProtocol.*;

/**
 * One transmission-phase request header as it came off the wire. {@link #refusal} decides, before
 * the device sees the request, whether it must be refused: a request that reached the device has
 * already been recorded in the disk's change log, so an error found later cannot be undone.
 *
 * @param offset the client's unsigned 64-bit offset; values of 2^63 and more are negative here
 * @param length the client's unsigned 32-bit length
 */
record NbdRequest(int flags, int type, long handle, long offset, long length) {

  /** For log lines: the command by name, the offset as the client sent it (unsigned). */
  @Override
  public String toString() {
    String command = switch (type) {
      case CMD_READ -> "READ";
      case CMD_WRITE -> "WRITE";
      case CMD_DISC -> "DISC";
      case CMD_FLUSH -> "FLUSH";
      case CMD_TRIM -> "TRIM";
      case CMD_WRITE_ZEROES -> "WRITE_ZEROES";
      default -> "command " + type;
    };
    return command + " at " + Long.toUnsignedString(offset) + " of " + length + " bytes, flags 0x"
        + Integer.toHexString(flags);
  }

  boolean fua() {
    return (flags & CMD_FLAG_FUA) != 0;
  }

  /**
   * The NBD error to refuse this request with, or 0 when the device may perform it. Errors follow
   * the protocol's "Error values": ENOSPC for writes past the end, EINVAL for reads and trims past
   * the end, EPERM for changes to a read-only export, EINVAL for unknown commands, unknown flags
   * and flags that do not apply to the command.
   */
  int refusal(long exportSize, boolean readOnly) {
    if (type != CMD_READ && type != CMD_WRITE && type != CMD_FLUSH && type != CMD_TRIM
        && type != CMD_WRITE_ZEROES && type != CMD_DISC) {
      return EINVAL;
    }
    if ((flags & ~allowedFlags(readOnly)) != 0) {
      return EINVAL;
    }
    boolean changesData = type == CMD_WRITE || type == CMD_TRIM || type == CMD_WRITE_ZEROES;
    if (readOnly && changesData) {
      return EPERM;
    }
    return switch (type) {
      case CMD_READ -> length > MAX_PAYLOAD || !inside(exportSize) ? EINVAL : 0;
      case CMD_WRITE -> length > MAX_PAYLOAD ? EINVAL : inside(exportSize) ? 0 : ENOSPC;
      case CMD_TRIM -> inside(exportSize) ? 0 : EINVAL;
      case CMD_WRITE_ZEROES -> inside(exportSize) ? 0 : ENOSPC;
      // offset and length of a flush are reserved and must be zero
      case CMD_FLUSH -> offset == 0 && length == 0 ? 0 : EINVAL;
      default -> 0; // CMD_DISC has no reply to carry an error
    };
  }

  /**
   * The flags this command may carry on this export. FUA is valid on every command once
   * NBD_FLAG_SEND_FUA was advertised, which only writable exports do. NO_HOLE applies to
   * WRITE_ZEROES. DF, REQ_ONE and FAST_ZERO need structured replies, block status or
   * NBD_FLAG_SEND_FAST_ZERO, none of which this server offers.
   */
  private int allowedFlags(boolean readOnly) {
    int allowed = readOnly ? 0 : CMD_FLAG_FUA;
    return type == CMD_WRITE_ZEROES ? allowed | CMD_FLAG_NO_HOLE : allowed;
  }

  /** Overflow-safe: {@code offset + length} can pass Long.MAX_VALUE, {@code size - offset} not. */
  private boolean inside(long exportSize) {
    return offset >= 0 && length <= exportSize - offset;
  }
}
