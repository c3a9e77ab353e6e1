package io.siterecovery.workflows.common;

public enum Health { NORMAL, WARNING, CRITICAL }
