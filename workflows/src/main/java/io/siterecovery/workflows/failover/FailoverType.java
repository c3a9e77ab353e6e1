package io.siterecovery.workflows.failover;

public enum FailoverType { PLANNED, UNPLANNED, TEST }
