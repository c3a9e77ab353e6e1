package io.siterecovery.agent;

/** A failure the agent reports to its callers with a stable code. */
public class AgentException extends RuntimeException {
  private final ErrorCode code;

  public AgentException(ErrorCode code, String message) {
    super(message);
    this.code = code;
  }

  public AgentException(ErrorCode code, String message, Throwable cause) {
    super(message, cause);
    this.code = code;
  }

  public ErrorCode code() {
    return code;
  }
}
