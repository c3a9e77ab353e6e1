#!/bin/sh
# The compose job temporal-setup (temporalio/admin-tools): once the server answers, creates the
# namespace and then the search attributes of SEARCH_ATTRIBUTES (all Keyword) in it. Both are
# idempotent (an existing namespace is kept, an existing attribute skipped by the server), so it
# runs at each `docker compose up`.
set -eu
: "${TEMPORAL_ADDRESS:?}" "${TEMPORAL_NAMESPACE:?}" "${SEARCH_ATTRIBUTES:?}"
retention="${NAMESPACE_RETENTION:-30d}"
deadline=$(( $(date +%s) + ${SETUP_TIMEOUT_SECONDS:-300} ))

until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "Temporal at $TEMPORAL_ADDRESS is not healthy after ${SETUP_TIMEOUT_SECONDS:-300} s" >&2
    exit 1
  fi
  echo "waiting for Temporal at $TEMPORAL_ADDRESS"
  sleep 2
done

if temporal operator namespace describe --address "$TEMPORAL_ADDRESS" \
    --namespace "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
  echo "namespace $TEMPORAL_NAMESPACE exists"
else
  temporal operator namespace create --address "$TEMPORAL_ADDRESS" \
      --namespace "$TEMPORAL_NAMESPACE" --retention "$retention"
  echo "namespace $TEMPORAL_NAMESPACE created (retention $retention)"
fi

for name in $SEARCH_ATTRIBUTES; do
  temporal operator search-attribute create --address "$TEMPORAL_ADDRESS" \
      --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type Keyword
  echo "search attribute $name (Keyword) in $TEMPORAL_NAMESPACE"
done
