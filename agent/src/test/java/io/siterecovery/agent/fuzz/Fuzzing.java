package io.siterecovery.agent.fuzz;

/** What all fuzz targets share. */
final class Fuzzing {
  /**
   * How long each target fuzzes in `mvn verify` (its "fuzz" execution); ./fuzz passes a longer
   * -max_total_time, which libFuzzer takes over this one.
   */
  static final String BOUNDED_RUN = "5s";

  private Fuzzing() {}
}
