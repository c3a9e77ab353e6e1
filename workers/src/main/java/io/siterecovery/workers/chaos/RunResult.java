package io.siterecovery.workers.chaos;

/**
 * What one run measured. {@code recoverySeconds}: from the moment the fault ended (the killed
 * process answering again, the link healed) until the interrupted operation completed or, for
 * delta cycles, a recovery point sealed after that moment was applied; null when it did not
 * within the scenario's limit. {@code linkBytes} / {@code payloadBytes}: bytes that crossed the
 * link towards the target against the bytes the VM wrote (prefill plus acknowledged writes),
 * an upper bound on what was re-sent. {@code lostWrites}: acknowledged FUA writes missing from
 * the source or the replica at the quiesced point; {@code corrupt}: the replica differs from the
 * source there ({@code qemu-img compare}).
 */
record RunResult(int run, Scenario scenario, String moment, Double recoverySeconds,
    long linkBytes, long payloadBytes, long lostWrites, boolean corrupt, boolean verified,
    String verification) {

  boolean recovered() {
    return recoverySeconds != null;
  }

  boolean ok() {
    return recovered() && verified && lostWrites == 0 && !corrupt;
  }
}
