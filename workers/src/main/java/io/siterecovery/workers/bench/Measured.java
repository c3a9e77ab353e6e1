package io.siterecovery.workers.bench;

/** One benchmark line: our figure, the reference measured in the same run, and the target. */
record Measured(String what, String ours, String reference, double ratio, String target,
    boolean met) {

  String row() {
    return String.format("| %s | %s | %s | %.2f× | %s | %s |", what, ours, reference, ratio,
        target, met ? "met" : "MISSED");
  }
}
