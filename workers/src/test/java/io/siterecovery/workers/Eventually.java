package io.siterecovery.workers;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.concurrent.locks.LockSupport;
import java.util.function.BooleanSupplier;

/**
 * Polls a workflow's or agent's observable state until a condition holds; the end-to-end tests'
 * only way to wait for a real server and real agents (there is no event to block on).
 */
public final class Eventually {
  private Eventually() {}

  public static void await(BooleanSupplier condition) {
    await(Duration.ofSeconds(60), condition);
  }

  public static void await(Duration limit, BooleanSupplier condition) {
    long deadline = System.nanoTime() + limit.toNanos();
    while (!condition.getAsBoolean()) {
      assertThat(System.nanoTime()).as("condition within %s", limit).isLessThan(deadline);
      LockSupport.parkNanos(Duration.ofMillis(100).toNanos());
    }
  }
}
