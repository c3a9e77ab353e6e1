package io.siterecovery.workflows.protection;

/** Progress of a long phase over all disks; {@code etaSeconds} is null until a rate is known. */
public record Progress(String phase, String disk, long bytesDone, long bytesTotal,
    double bytesPerSecond, Long etaSeconds) {}
