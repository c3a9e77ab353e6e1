#!/usr/bin/env bash
# A Temporal server persisting to the PostgreSQL of Debian's packages (postgresql-15), the
# persistence production runs on, for the real-server tier and for an operator's own check:
#
#   ops/postgres/temporal-server.sh [--background] [WORK_DIR]
#
# Steps, each printed as it runs (every one may run again: nothing already there is redone):
#   1. start the Debian cluster (pg_ctlcluster) if it is down;
#   2. create the role `temporal` and the databases `temporal` and `temporal_visibility`;
#   3. bring both schemas to this server's version with temporal-sql-tool
#      (setup-schema -v 0.0, then update-schema from the versioned directory);
#   4. write the server's config into WORK_DIR (default ./.site-recovery/temporal-postgres):
#      Temporal's development-postgres12.yaml with every port moved up by PORT_SHIFT, so that
#      this server never meets a `temporal server start-dev` on 7233;
#   5. start the server, and create the namespace `default` once it answers.
# In the foreground the script then waits for the server (Ctrl-C stops it); with --background
# it returns, leaving WORK_DIR/server.pid and WORK_DIR/server.log.
#
# Run as root (it becomes `postgres` for the cluster's administration). Environment:
#   TEMPORAL_DB_PASSWORD  the role's password; the default is for a local check only
#   PG_CLUSTER            Debian cluster "version/name", default 15/main
#   PG_PORT               that cluster's port, default 5432
#   PORT_SHIFT            added to each of Temporal's ports, default 10200 (frontend 17433)
#   TEMPORAL_SERVER_SRC   the server's module (config templates and schemas), default the Go
#                         module cache's go.temporal.io/server@v1.29.1
#   GOBIN                 where `server`, `sql` (temporal-sql-tool) and `temporal` are, ~/go/bin
set -euo pipefail

background=false
if [[ "${1:-}" == "--background" ]]; then
  background=true
  shift
fi
work="$(mkdir -p "${1:-./.site-recovery/temporal-postgres}" && cd "${1:-./.site-recovery/temporal-postgres}" && pwd)"

password="${TEMPORAL_DB_PASSWORD:-temporal-local-check}"
cluster="${PG_CLUSTER:-15/main}"
pg_port="${PG_PORT:-5432}"
shift_by="${PORT_SHIFT:-10200}"
src="${TEMPORAL_SERVER_SRC:-$HOME/go/pkg/mod/go.temporal.io/server@v1.29.1}"
bin="${GOBIN:-$HOME/go/bin}"
[[ "$shift_by" =~ ^[0-9]{1,5}$ ]] && ((8000 + shift_by <= 65535)) \
  || { echo "PORT_SHIFT must be 0..57535 (Temporal's highest port, 8000, plus it must fit)" >&2; exit 1; }
[[ "$pg_port" =~ ^[0-9]{1,5}$ ]] && ((pg_port <= 65535)) || { echo "PG_PORT: not a port" >&2; exit 1; }
[[ "$cluster" =~ ^[0-9]+/[A-Za-z0-9_-]+$ ]] || { echo "PG_CLUSTER: expected e.g. 15/main" >&2; exit 1; }
[[ -n "$password" ]] || { echo "TEMPORAL_DB_PASSWORD is empty" >&2; exit 1; }
frontend="127.0.0.1:$((7233 + shift_by))"

temporal_cli() { "$bin/temporal" "$@" --address "$frontend"; }
step() { printf '\n== %s\n' "$*"; }
# psql as the cluster's superuser, through its local socket (peer authentication).
as_postgres() { runuser -u postgres -- psql -p "$pg_port" -v ON_ERROR_STOP=1 -qtA "$@"; }

for tool in server sql temporal; do
  [[ -x "$bin/$tool" ]] || { echo "missing $bin/$tool (GOBIN)" >&2; exit 1; }
done
[[ -f "$src/config/development-postgres12.yaml" ]] \
  || { echo "no Temporal server sources at $src (TEMPORAL_SERVER_SRC)" >&2; exit 1; }

step "1. PostgreSQL cluster $cluster"
if pg_lsclusters -h | awk -v c="$cluster" '$1 "/" $2 == c && $4 == "online" { found = 1 } END { exit !found }'; then
  echo "already online"
else
  pg_ctlcluster "${cluster%/*}" "${cluster#*/}" start
  echo "started"
fi

step "2. role temporal, databases temporal and temporal_visibility"
# The password goes through a psql variable, quoted by psql (:'pw'), never into the command line.
if [[ "$(as_postgres -c "select 1 from pg_roles where rolname = 'temporal'")" == 1 ]]; then
  echo "role temporal exists; setting its password"
  as_postgres -v pw="$password" <<<"alter role temporal with login password :'pw';"
else
  echo "creating role temporal"
  as_postgres -v pw="$password" <<<"create role temporal with login password :'pw';"
fi
for db in temporal temporal_visibility; do
  if [[ "$(as_postgres -c "select 1 from pg_database where datname = '$db'")" == 1 ]]; then
    echo "database $db exists"
  else
    echo "creating database $db (owner temporal)"
    as_postgres -c "create database $db owner temporal"
  fi
done

# temporal-sql-tool logs every statement at DEBUG; its INFO lines and errors are enough here.
sql_tool() {
  SQL_PASSWORD="$password" "$bin/sql" --plugin postgres12 --ep 127.0.0.1 -p "$pg_port" \
    -u temporal "$@" 2>&1 | { grep -v DEBUG || true; }
}
step "3. schemas (temporal-sql-tool, $src/schema/postgresql/v12)"
for pair in temporal:temporal visibility:temporal_visibility; do
  schema="${pair%%:*}"
  db="${pair#*:}"
  # setup-schema -v 0.0 only creates the version tables (kept if there); update-schema then
  # applies the versions newer than the database's.
  sql_tool --db "$db" setup-schema -v 0.0
  sql_tool --db "$db" update-schema -d "$src/schema/postgresql/v12/$schema/versioned"
  echo "database $db: schema up to date"
done

step "4. server config in $work/config (ports shifted by $shift_by)"
mkdir -p "$work/config/dynamicconfig" "$work/archival"
# Every port of development-postgres12.yaml: frontend gRPC/HTTP, history, matching, worker,
# their membership ports, pprof and Prometheus metrics.
shift_ports=""
for p in 7233 7243 7234 7235 7239 6933 6934 6935 6939 7936 8000; do
  shift_ports+="s/([^0-9])$p([^0-9]|\$)/\\1$((p + shift_by))\\2/g;"
done
sed -E -e "$shift_ports" \
  -e "s|config/dynamicconfig/|$work/config/dynamicconfig/|" \
  -e "s/127\.0\.0\.1:5432/127.0.0.1:$pg_port/" \
  -e "s|file:///tmp/temporal_(vis_)?archival/development|file://$work/archival/\1development|" \
  "$src/config/development-postgres12.yaml" >"$work/config/development.yaml.new"
# The password is not in the template's sed expressions (it may hold any character).
PW="$password" awk '/^ *password: "temporal"$/ { sub(/"temporal"/, "\"" ENVIRON["PW"] "\"") } { print }' \
  "$work/config/development.yaml.new" >"$work/config/development.yaml"
rm "$work/config/development.yaml.new"
chmod 600 "$work/config/development.yaml"
sed -E "$shift_ports" "$src/config/dynamicconfig/development-sql.yaml" \
  >"$work/config/dynamicconfig/development-sql.yaml"
if grep -nE '(^|[^0-9])(7233|7234|7235|7239|7243|6933|6934|6935|6939|7936|8000)([^0-9]|$)' \
  "$work/config/development.yaml"; then
  echo "a port of the template was left unshifted (above)" >&2
  exit 1
fi
grep -E 'grpcPort|httpPort|membershipPort|port:|listenAddress|rpcAddress' "$work/config/development.yaml" \
  | sed 's/^ */  /'

step "5. Temporal server $("$bin/server" --version | awk '{print $NF}') on $frontend (log: $work/server.log)"
if [[ -f "$work/server.pid" ]] && kill -0 "$(cat "$work/server.pid")" 2>/dev/null; then
  echo "already running, pid $(cat "$work/server.pid")" >&2
  exit 1
fi
# A server already answering there (another one's, or this one's from before) would pass every
# check below while this one fails to bind.
if temporal_cli operator cluster health >/dev/null 2>&1; then
  echo "something already answers on $frontend; stop it or choose another PORT_SHIFT" >&2
  exit 1
fi
"$bin/server" --root "$work" --config config --env development --allow-no-auth start \
  >"$work/server.log" 2>&1 &
server_pid=$!
echo "$server_pid" >"$work/server.pid"
echo "pid $server_pid"
# Until the namespace is ready (and in the foreground, until the end), this script ending for
# any reason, Ctrl-C and TERM included, stops the server it started.
stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
}
trap stop_server EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

deadline=$((SECONDS + 120))
until temporal_cli operator cluster health 2>/dev/null | grep -q SERVING; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server exited; the end of $work/server.log:" >&2
    tail -n 30 "$work/server.log" >&2
    exit 1
  fi
  if ((SECONDS > deadline)); then
    echo "the server did not answer within 120 s; see $work/server.log" >&2
    exit 1
  fi
  sleep 1
done
echo "serving"

if temporal_cli operator namespace describe --namespace default >/dev/null 2>&1; then
  echo "namespace default exists"
else
  temporal_cli operator namespace create --namespace default --retention 72h
fi
# Search attributes and workflows need the namespace in the frontend's namespace cache, which
# refreshes every few seconds: wait until a call that reads the cache succeeds.
deadline=$((SECONDS + 60))
until temporal_cli workflow list --namespace default --limit 1 >/dev/null 2>&1; do
  if ((SECONDS > deadline)); then
    echo "namespace default not usable within 60 s; see $work/server.log" >&2
    exit 1
  fi
  sleep 1
done
echo "namespace default ready: temporal ... --address $frontend"


if $background; then
  trap - EXIT INT TERM
  echo "running in the background; stop it with: kill \$(cat $work/server.pid)"
  exit 0
fi
echo "running in the foreground; Ctrl-C stops it"
wait "$server_pid"
