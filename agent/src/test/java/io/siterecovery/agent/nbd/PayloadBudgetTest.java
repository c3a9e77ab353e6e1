package io.siterecovery.agent.nbd;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.junit.jupiter.api.Test;

/** Payload buffers come out of one budget; a request that does not fit waits for room. */
class PayloadBudgetTest {
  private static final int MIB = 1 << 20;

  @Test
  void aLeaseWaitsUntilEarlierLeasesReturnTheirBytes() throws Exception {
    PayloadBudget budget = new PayloadBudget(64 * MIB);
    PayloadBudget.Lease first = budget.lease(40 * MIB);
    assertThat(first.buffer().capacity()).isEqualTo(40 * MIB);
    assertThat(budget.available()).isEqualTo(24 * MIB);

    CompletableFuture<PayloadBudget.Lease> second =
        CompletableFuture.supplyAsync(() -> {
          try {
            return budget.lease(32 * MIB);
          } catch (java.io.InterruptedIOException e) {
            throw new IllegalStateException(e);
          }
        });
    try {
      second.get(300, TimeUnit.MILLISECONDS);
      throw new AssertionError("a lease beyond the budget did not wait");
    } catch (TimeoutException expected) {
      // back-pressure: it waits while the first lease holds the bytes
    }

    first.close();
    try (PayloadBudget.Lease lease = second.get(5, TimeUnit.SECONDS)) {
      assertThat(lease.buffer().capacity()).isEqualTo(32 * MIB);
      assertThat(budget.available()).isEqualTo(32 * MIB);
    }
    assertThat(budget.available()).isEqualTo(64 * MIB);
  }
}
