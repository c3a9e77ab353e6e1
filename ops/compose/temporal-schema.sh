#!/bin/sh
# The compose job temporal-schema (temporalio/admin-tools): creates Temporal's two PostgreSQL
# databases and brings their schemas to the server image's version. Every step is idempotent
# (create skips an existing database, setup-schema an initialised one, update-schema applies only
# newer versions), so it runs at each `docker compose up`.
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
port="${DB_PORT:-5432}"
schemas=/etc/temporal/schema/postgresql/v12

sql() {
  temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" "$@"
}

for pair in temporal:temporal visibility:temporal_visibility; do
  schema="${pair%%:*}"
  db="${pair#*:}"
  echo "database $db: create, set up, update to $schemas/$schema/versioned"
  sql --db "$db" create
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$schemas/$schema/versioned"
done
echo "Temporal's schemas are ready"
