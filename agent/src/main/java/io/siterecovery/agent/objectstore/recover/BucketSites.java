package io.siterecovery.agent.objectstore.recover;

import io.siterecovery.agent.objectstore.KeyEncryptionKey;
import io.siterecovery.agent.objectstore.ObjectStore;
import java.util.Optional;

/**
 * The object-store sites this recovery host may read from, by site name: a bucket (store) and
 * the key-encryption key its objects are sealed under, from the agent's {@code --object-store}
 * configuration (HostAgent builds it); tests pass their own.
 */
@FunctionalInterface
public interface BucketSites {
  BucketSites NONE = site -> Optional.empty();

  record Bucket(ObjectStore store, KeyEncryptionKey kek) {}

  Optional<Bucket> bucket(String site);
}
