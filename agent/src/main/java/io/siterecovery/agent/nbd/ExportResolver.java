package io.siterecovery.agent.nbd;

import java.util.List;
import java.util.Optional;

/** Maps NBD export names to devices; only exports that are up are listed or opened. */
public interface ExportResolver {
  Optional<BlockDevice> openExport(String exportName);

  List<String> exportNames();
}
