#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the `postgres` test marker (Dagster instance storage).
#
#   bash .ci/postgres.sh start [PORT]   # install the server if missing (Debian's `postgresql`), init a
#                                       # cluster, serve on 127.0.0.1:PORT (default 55432), wait until
#                                       # ready, print the SQLAlchemy URL (postgresql+psycopg2://...) on stdout
#   bash .ci/postgres.sh stop           # stop the server started by `start` (by its PID)
#   bash .ci/postgres.sh status
#
# Use:  export CHIMERA_TEST_POSTGRES_URL="$(bash .ci/postgres.sh start 55432)"
#
# The cluster lives in CHIMERA_PG_STATE (default /tmp/chimera-postgres) and belongs to the `postgres`
# system user when run as root (initdb refuses root). Authentication is `trust` on 127.0.0.1 only:
# this server is for tests, never for data.
set -euo pipefail

STATE="${CHIMERA_PG_STATE:-/tmp/chimera-postgres}"
DATA="$STATE/data"
LOG="$STATE/postgres.log"
PORTFILE="$STATE/port"

log() { echo "postgres.sh: $*" >&2; }

pg_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [[ -x "$dir/pg_ctl" ]]; then echo "$dir"; return 0; fi
  done
  return 1
}

install_server() {
  if pg_bin >/dev/null; then return 0; fi
  if [[ "$(id -u)" != "0" ]] || ! command -v apt-get >/dev/null; then
    log "no PostgreSQL server found and cannot apt-get install it (install Debian's 'postgresql')"
    return 1
  fi
  log "installing Debian's postgresql package"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  # The package starts a system cluster on 5432; this script runs its own, so stop that one.
  if command -v pg_ctlcluster >/dev/null; then
    for c in /etc/postgresql/*/main; do
      [[ -d "$c" ]] && pg_ctlcluster "$(basename "$(dirname "$c")")" main stop >&2 2>/dev/null || true
    done
  fi
  pg_bin >/dev/null
}

# Run a PostgreSQL binary as the cluster owner (the `postgres` user when we are root).
as_owner() {
  if [[ "$(id -u)" == "0" ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

pid_of_server() {
  [[ -f "$DATA/postmaster.pid" ]] && head -1 "$DATA/postmaster.pid"
}

start() {
  local port="${1:-55432}"
  install_server
  local bin; bin="$(pg_bin)"
  mkdir -p "$STATE"
  if [[ "$(id -u)" == "0" ]]; then chown postgres:postgres "$STATE"; fi
  if [[ ! -f "$DATA/PG_VERSION" ]]; then
    as_owner "$bin/initdb" -D "$DATA" -U postgres --auth=trust --encoding=UTF8 --no-locale >"$STATE/initdb.log" 2>&1 || {
      log "initdb failed:"; cat "$STATE/initdb.log" >&2; return 1; }
  fi
  local pid; pid="$(pid_of_server || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    port="$(cat "$PORTFILE")"
  else
    # max_connections: the webserver, the daemon and run workers each keep a small pool.
    as_owner "$bin/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 \
      -o "-h 127.0.0.1 -p $port -k $STATE -c max_connections=200 -c fsync=off" start >&2 || {
      log "server did not start:"; tail -20 "$LOG" >&2; return 1; }
    echo "$port" >"$PORTFILE"
  fi
  local i
  for i in $(seq 1 30); do
    if psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atc "select 1" >/dev/null 2>&1; then
      echo "postgresql+psycopg2://postgres@127.0.0.1:$port/postgres"
      return 0
    fi
    sleep 1
  done
  log "server on port $port does not answer"; return 1
}

stop() {
  local pid; pid="$(pid_of_server || true)"
  if [[ -z "$pid" ]]; then log "not running"; return 0; fi
  kill -TERM "$pid" 2>/dev/null || true   # smart shutdown of the postmaster we started, by its PID
  local i
  for i in $(seq 1 30); do
    kill -0 "$pid" 2>/dev/null || { log "stopped (pid $pid)"; return 0; }
    sleep 1
  done
  kill -KILL "$pid" 2>/dev/null || true
  log "killed (pid $pid)"
}

status() {
  local pid; pid="$(pid_of_server || true)"
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    echo "running pid $pid port $(cat "$PORTFILE" 2>/dev/null)"
  else
    echo "stopped"
  fi
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start [PORT] | stop | status" >&2; exit 2 ;;
esac
