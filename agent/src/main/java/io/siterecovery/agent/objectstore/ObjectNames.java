package io.siterecovery.agent.objectstore;

import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The bucket's layout for one VM. Names carry ids only (the VM's id, a disk's index, a chunk's
 * index, generations and point ids), never a VM's name or data:
 *
 * <pre>
 * vms/&lt;vm&gt;/disk-&lt;disk&gt;/chunk-&lt;index&gt;-&lt;generation&gt;   a chunk of the disk image
 * vms/&lt;vm&gt;/disk-&lt;disk&gt;/log-&lt;generation&gt;            a sealed .hrl generation
 * vms/&lt;vm&gt;/points/&lt;point&gt;-r&lt;revision&gt;.manifest     a recovery point, written last
 * </pre>
 *
 * Numbers are fixed-width hex, so listing order is numeric order. A chunk's generation is 0 for
 * the initial copy and the point id a prune folded logs into it at, so no name is ever reused
 * for different bytes.
 */
public final class ObjectNames {
  private static final Pattern VM_ID = Pattern.compile("[a-z0-9][a-z0-9-]{0,63}");
  private static final Pattern DATA =
      Pattern.compile("disk-[0-9]+/(chunk-[0-9a-f]{8}-[0-9a-f]{16}|log-[0-9a-f]{16})");
  private static final Pattern MANIFEST =
      Pattern.compile("points/([0-9a-f]{16})-r([0-9a-f]{8})\\.manifest");

  private final String vmId;

  public ObjectNames(String vmId) {
    if (!VM_ID.matcher(vmId).matches()) {
      throw new IllegalArgumentException("a VM id is 1-64 of [a-z0-9-]: " + vmId);
    }
    this.vmId = vmId;
  }

  public String vmId() {
    return vmId;
  }

  public String vmPrefix() {
    return "vms/" + vmId + "/";
  }

  public String pointsPrefix() {
    return vmPrefix() + "points/";
  }

  public String chunk(int disk, long index, long generation) {
    return String.format("%sdisk-%d/chunk-%08x-%016x", vmPrefix(), disk, index, generation);
  }

  public String log(int disk, long generation) {
    return String.format("%sdisk-%d/log-%016x", vmPrefix(), disk, generation);
  }

  public String manifest(long pointId, int revision) {
    return String.format("%spoints/%016x-r%08x.manifest", vmPrefix(), pointId, revision);
  }

  /**
   * Whether {@code key} is a chunk or log object of this VM: the only keys a prune deletes, so
   * anything else in the bucket (a store's directory markers, an operator's files) is left alone.
   */
  public boolean isDataObject(String key) {
    return key.startsWith(vmPrefix())
        && DATA.matcher(key.substring(vmPrefix().length())).matches();
  }

  /** A manifest's point and revision, from its key; empty for any other key. */
  public record ManifestName(long pointId, int revision) {}

  public Optional<ManifestName> parseManifest(String key) {
    if (!key.startsWith(vmPrefix())) {
      return Optional.empty();
    }
    Matcher m = MANIFEST.matcher(key.substring(vmPrefix().length()));
    if (!m.matches()) {
      return Optional.empty();
    }
    return Optional.of(new ManifestName(Long.parseUnsignedLong(m.group(1), 16),
        Integer.parseUnsignedInt(m.group(2), 16)));
  }
}
