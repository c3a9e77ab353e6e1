package io.siterecovery.workflows.failback;

/**
 * {@code {"vm":"web01","reprotect":true}}: a planned failover home, then (unless
 * {@code reprotect} is false) reverse replication again, so that the VM ends protected from its
 * home site to its partner as it started; {@code policy} is that protection's (default
 * "default").
 */
public record FailbackInput(String vm, Boolean reprotect, String policy) {
  public FailbackInput(String vm, Boolean reprotect) {
    this(vm, reprotect, null);
  }
}
