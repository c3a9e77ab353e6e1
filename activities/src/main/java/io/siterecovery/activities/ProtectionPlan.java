package io.siterecovery.activities;

import java.util.List;

/** Where a VM replicates from and to, and its disks: what every replication step needs. */
public record ProtectionPlan(String vm, String sourceSite, String targetSite, List<DiskInfo> disks) {
  public record DiskInfo(String name, long sizeBytes) {}

  public long totalBytes() {
    return disks.stream().mapToLong(DiskInfo::sizeBytes).sum();
  }
}
