package io.siterecovery.workflows.reprotect;

/**
 * How the old site's disks are brought in line with the active VM. {@code CHANGED_RANGES}: they
 * equal the failover point, so only what changed since travels. {@code CHECKSUM_RESYNC}: they may
 * hold writes the replica never got (saved first), so blocks are compared and only differing ones
 * sent. {@code FULL_COPY}: the old site has no disks for the VM any more.
 */
public enum ReverseMode { CHANGED_RANGES, CHECKSUM_RESYNC, FULL_COPY }
