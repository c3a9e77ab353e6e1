package io.siterecovery.agent.vm;

import io.siterecovery.agent.AgentException;
import io.siterecovery.agent.ErrorCode;
import java.util.regex.Pattern;

/** Names that come from requests become file names, so they are held to a safe alphabet. */
public final class Names {
  private static final Pattern SAFE = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}");

  private Names() {}

  public static String requireValid(String kind, String name) {
    if (name == null || !SAFE.matcher(name).matches() || name.contains("..")) {
      throw new AgentException(ErrorCode.BAD_REQUEST, "invalid " + kind + " name '" + name
          + "': use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit");
    }
    return name;
  }
}
