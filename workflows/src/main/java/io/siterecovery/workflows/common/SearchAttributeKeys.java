package io.siterecovery.workflows.common;

import io.temporal.common.SearchAttributeKey;
import java.util.List;

/** Typed Keyword search attributes for the UI's filters; the dev server registers them. */
public final class SearchAttributeKeys {
  public static final SearchAttributeKey<String> VM_NAME = SearchAttributeKey.forKeyword("VmName");
  public static final SearchAttributeKey<String> PROTECTION_STATE =
      SearchAttributeKey.forKeyword("ProtectionState");
  public static final SearchAttributeKey<String> REPLICATION_HEALTH =
      SearchAttributeKey.forKeyword("ReplicationHealth");
  public static final SearchAttributeKey<String> SOURCE_SITE =
      SearchAttributeKey.forKeyword("SourceSite");
  public static final SearchAttributeKey<String> TARGET_SITE =
      SearchAttributeKey.forKeyword("TargetSite");
  public static final SearchAttributeKey<String> RECOVERY_PLAN =
      SearchAttributeKey.forKeyword("RecoveryPlan");

  public static final List<SearchAttributeKey<String>> ALL = List.of(VM_NAME, PROTECTION_STATE,
      REPLICATION_HEALTH, SOURCE_SITE, TARGET_SITE, RECOVERY_PLAN);

  private SearchAttributeKeys() {}
}
