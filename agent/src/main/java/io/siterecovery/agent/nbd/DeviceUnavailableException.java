package io.siterecovery.agent.nbd;

import java.io.IOException;

/** The device refuses I/O because its VM is shutting down or off; NBD clients see ESHUTDOWN. */
public class DeviceUnavailableException extends IOException {
  public DeviceUnavailableException(String message) {
    super(message);
  }
}
