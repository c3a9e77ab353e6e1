package io.siterecovery.workflows.common;

/** Body of operator signals such as commit, cancel, pause; {@code reason} is optional. */
public record OperatorRequest(String reason) {}
