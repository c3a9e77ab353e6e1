package io.siterecovery.workflows.common;

import io.siterecovery.activities.FailureTypes;
import io.temporal.failure.ApplicationFailure;
import java.util.regex.Pattern;

/** Checks on operator input that fail the workflow at once with a message naming the field. */
public final class Inputs {
  private static final Pattern NAME = Pattern.compile("[A-Za-z0-9][A-Za-z0-9_.-]{0,62}");

  private Inputs() {}

  public static <T> T requireInput(T input, String example) {
    if (input == null) {
      throw invalid("input is required, e.g. " + example);
    }
    return input;
  }

  public static String requireName(String field, String value) {
    if (value == null || value.isBlank()) {
      throw invalid("field '" + field + "' is required");
    }
    if (!NAME.matcher(value).matches() || value.contains("..")) {
      throw invalid("field '" + field + "': '" + value
          + "' is not a valid name (letters, digits, '.', '_', '-')");
    }
    return value;
  }

  public static ApplicationFailure invalid(String message) {
    return ApplicationFailure.newNonRetryableFailure(message, FailureTypes.INVALID_INPUT);
  }
}
