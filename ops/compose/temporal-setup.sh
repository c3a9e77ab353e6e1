#!/bin/sh
# The compose job temporal-setup (temporalio/admin-tools): once the server answers, creates the
# namespace and then the search attributes of SEARCH_ATTRIBUTES (all Keyword) in it. Both are
# idempotent (an existing namespace is kept, an existing attribute skipped by the server), so it
# runs at each `docker compose up`.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${SEARCH_ATTRIBUTES:?}"
retention="${NAMESPACE_RETENTION:-30d}"
timeout="${SETUP_TIMEOUT_SECONDS:-300}"
deadline=$(( $(date +%s) + timeout ))

# Runs a command until it succeeds, every 2 s, failing the job past the deadline.
retry() {
  what="$1"
  shift
  until "$@"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      echo "gave up after $timeout s: $what" >&2
      exit 1
    fi
    echo "not yet: $what; again in 2 s"
    sleep 2
  done
}

retry "Temporal at $TEMPORAL_ADDRESS answering" \
  temporal operator cluster health --address "$TEMPORAL_ADDRESS"

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" \
    --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  echo "namespace $TEMPORAL_NAMESPACE exists"
else
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" \
      --namespace "$TEMPORAL_NAMESPACE" --retention "$retention"
  echo "namespace $TEMPORAL_NAMESPACE created (retention $retention)"
fi

# A new namespace reaches every part of the server within seconds (its registry is a cache):
# until then creating a search attribute in it fails with "namespace not found".
for name in $SEARCH_ATTRIBUTES; do
  retry "search attribute $name (Keyword) in $TEMPORAL_NAMESPACE" \
    temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" \
      --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type Keyword
  echo "search attribute $name (Keyword) in $TEMPORAL_NAMESPACE"
done
