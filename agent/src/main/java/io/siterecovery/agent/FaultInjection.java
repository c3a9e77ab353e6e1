package io.siterecovery.agent;

import java.util.concurrent.atomic.AtomicLong;

/**
 * Test-only crash points. Started with {@code -Dsiterecovery.test.crashAt=STEP} or
 * {@code STEP:N}, the agent prints {@code CRASH AT STEP N} and halts the JVM (no shutdown hooks,
 * exit status {@link #EXIT_STATUS}) the N-th time (default: the first) it reaches that step, so a
 * test can stop it at an exact point of an apply or rollback. Without the property every call is
 * a no-op. The steps are listed in docs/undo-journal.md ("Testing it").
 */
public final class FaultInjection {
  public static final String PROPERTY = "siterecovery.test.crashAt";
  public static final int EXIT_STATUS = 86;

  private static final String STEP;
  private static final long AT;
  private static final AtomicLong reached = new AtomicLong();

  static {
    String value = System.getProperty(PROPERTY);
    if (value == null || value.isBlank()) {
      STEP = null;
      AT = 0;
    } else {
      int colon = value.indexOf(':');
      STEP = colon < 0 ? value.trim() : value.substring(0, colon).trim();
      AT = colon < 0 ? 1 : Long.parseLong(value.substring(colon + 1).trim());
    }
  }

  private FaultInjection() {}

  public static void reached(String step) {
    if (STEP == null || !STEP.equals(step)) {
      return;
    }
    long n = reached.incrementAndGet();
    if (n >= AT) {
      System.out.println("CRASH AT " + step + " " + n);
      System.out.flush();
      Runtime.getRuntime().halt(EXIT_STATUS);
    }
  }
}
