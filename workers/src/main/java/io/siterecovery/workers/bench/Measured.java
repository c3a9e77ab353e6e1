package io.siterecovery.workers.bench;

/** One benchmark line: our figure, the reference measured in the same run, and the target. */
record Measured(String what, String ours, String reference, double ratio, String target,
    boolean met) {

  /** A line for a benchmark that could not run (a tool missing, an error): no ratio. */
  static Measured notRun(String what, String why) {
    return new Measured(what, why, "—", Double.NaN, "—", false);
  }

  /** The median of a few timings of the same thing (the mean of the middle two when even). */
  static double median(java.util.List<Double> values) {
    java.util.List<Double> v = values.stream().sorted().toList();
    int n = v.size();
    return n % 2 == 1 ? v.get(n / 2) : (v.get(n / 2 - 1) + v.get(n / 2)) / 2;
  }

  String row() {
    boolean ran = !Double.isNaN(ratio);
    return String.format(java.util.Locale.ROOT, "| %s | %s | %s | %s | %s | %s |", what, ours,
        reference, ran ? String.format(java.util.Locale.ROOT, "%.2f×", ratio) : "—", target,
        !ran ? "not run" : met ? "met" : "MISSED");
  }
}
