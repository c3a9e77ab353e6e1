package io.siterecovery.agent.nbd;

import java.util.List;
import java.util.Optional;
import java.util.stream.Stream;

/** Maps NBD export names to devices; only exports that are up are listed or opened. */
public interface ExportResolver {
  Optional<BlockDevice> openExport(String exportName);

  List<String> exportNames();

  /** The exports of all of {@code resolvers}; the first that knows a name serves it. */
  static ExportResolver of(ExportResolver... resolvers) {
    return new ExportResolver() {
      @Override
      public Optional<BlockDevice> openExport(String exportName) {
        return Stream.of(resolvers).map(r -> r.openExport(exportName)).flatMap(Optional::stream)
            .findFirst();
      }

      @Override
      public List<String> exportNames() {
        return Stream.of(resolvers).flatMap(r -> r.exportNames().stream()).sorted().toList();
      }
    };
  }
}
