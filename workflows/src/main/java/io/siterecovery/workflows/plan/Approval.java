package io.siterecovery.workflows.plan;

/** Signal {@code approve}: {@code {"step":"confirm DB is open","by":"alice"}}. */
public record Approval(String step, String by) {}
