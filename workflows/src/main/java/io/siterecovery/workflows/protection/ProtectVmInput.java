package io.siterecovery.workflows.protection;

/**
 * {@code {"vm":"web01","policy":"default"}}; {@code policy} defaults to "default".
 * {@code targetSite}: where to replicate to, e.g. an object-store site {@code "cloud"} (absent: the
 * partner of the VM's site, or where it replicates already). {@code carried}: set only by the
 * workflow itself when it continues as new; inputs without it (an operator's, or one written
 * before it existed) start from scratch.
 */
public record ProtectVmInput(String vm, String policy, String targetSite, CarriedState carried) {
  public ProtectVmInput(String vm, String policy) {
    this(vm, policy, null, null);
  }

  public ProtectVmInput(String vm, String policy, CarriedState carried) {
    this(vm, policy, null, carried);
  }
}
