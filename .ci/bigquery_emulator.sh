#!/usr/bin/env bash
# Local BigQuery emulator (local-bigquery, backed by DuckDB) for the `bigquery` test marker.
#
#   bash .ci/bigquery_emulator.sh install        # idempotent: venv + packages + DuckDB extensions
#   bash .ci/bigquery_emulator.sh start [PORT]   # install if needed, serve on 127.0.0.1:PORT (default 9050),
#                                                # wait until ready, print the endpoint URL on stdout
#   bash .ci/bigquery_emulator.sh stop           # stop the server started by `start` (by its PID file)
#   bash .ci/bigquery_emulator.sh status
#
# Use:  export CHIMERA_BQ_EMULATOR="$(bash .ci/bigquery_emulator.sh start 9050)"
#
# The emulator needs Python >= 3.13, so it lives in its own venv (not the project's 3.11 one).
# Everything comes from PyPI; DuckDB cannot download its extensions here, so they are INSTALLed from
# the .duckdb_extension files shipped inside the duckdb-extension-* wheels.
#
# Environment:
#   CHIMERA_BQ_EMULATOR_VENV    venv location (default ~/.cache/chimera/bq-emulator-venv)
#   CHIMERA_BQ_EMULATOR_PYTHON  python3.13 interpreter (default: pyenv's 3.13.0, else python3.13 on PATH)
#   CHIMERA_BQ_EMULATOR_STATE   where the PID file, log and data dir go (default /tmp/chimera-bq-emulator)
#   CHIMERA_BQ_EMULATOR_GRPC_PORT  gRPC (Storage Read API) port (default PORT+10)
set -euo pipefail

VENV="${CHIMERA_BQ_EMULATOR_VENV:-$HOME/.cache/chimera/bq-emulator-venv}"
STATE="${CHIMERA_BQ_EMULATOR_STATE:-/tmp/chimera-bq-emulator}"
PIDFILE="$STATE/emulator.pid"
LOGFILE="$STATE/emulator.log"
DUCKDB_VERSION="1.5.5"
PACKAGES=(
  "local-bigquery==0.3.2"
  "duckdb==${DUCKDB_VERSION}"
  "duckdb-extension-icu==${DUCKDB_VERSION}"
  "duckdb-extension-ducklake==${DUCKDB_VERSION}"
  "duckdb-extension-spatial==${DUCKDB_VERSION}"
)
STAMP="$VENV/.chimera-installed"
STAMP_CONTENT="${PACKAGES[*]} +extensions"

log() { echo "bigquery_emulator: $*" >&2; }

find_python() {
  local candidates=(
    "${CHIMERA_BQ_EMULATOR_PYTHON:-}"
    "$HOME/.pyenv/versions/3.13.0/bin/python3.13"
    "$(command -v python3.13 || true)"
  )
  local p
  for p in "${candidates[@]}"; do
    if [[ -n "$p" && -x "$p" ]]; then
      echo "$p"
      return 0
    fi
  done
  log "no Python 3.13 found (set CHIMERA_BQ_EMULATOR_PYTHON)"
  return 1
}

extensions_installed() {
  local name
  for name in icu ducklake spatial; do
    compgen -G "$HOME/.duckdb/extensions/v${DUCKDB_VERSION}/*/${name}.duckdb_extension" >/dev/null || return 1
  done
}

install() {
  if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_CONTENT" && -x "$VENV/bin/local-bigquery" ]] \
      && extensions_installed; then
    return 0
  fi
  local py
  py="$(find_python)"
  log "installing into $VENV with $py"
  if [[ ! -x "$VENV/bin/python" ]]; then
    mkdir -p "$(dirname "$VENV")"
    "$py" -m venv "$VENV"
  fi
  # (the machine's pip config lists local file indexes that lack these packages: drop that noise)
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PACKAGES[@]}" 2>&1 \
    | grep -v "is ignored: it is neither a file nor a directory" >&2 || true
  "$VENV/bin/python" -c "import duckdb, local_bigquery" \
    || { log "pip install into $VENV failed"; return 1; }
  # INSTALL each extension from the file inside its wheel (into ~/.duckdb/extensions/<version>/...),
  # because the emulator would otherwise try to download it.
  "$VENV/bin/python" - <<'PY' >&2
import glob
import os
import site

import duckdb

paths = []
for sp in site.getsitepackages():
    paths += glob.glob(os.path.join(sp, "**", "*.duckdb_extension"), recursive=True)
names = {os.path.basename(p).split(".")[0]: p for p in paths}
missing = {"icu", "ducklake", "spatial"} - set(names)
if missing:
    raise SystemExit(f"extension files not found in the wheels: {sorted(missing)}")
con = duckdb.connect()
for name, path in sorted(names.items()):
    con.execute(f"FORCE INSTALL '{path}'")
    con.execute(f"LOAD {name}")
    print(f"duckdb extension {name} installed from {path}")
PY
  echo "$STAMP_CONTENT" >"$STAMP"
}

is_running() {
  [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

start() {
  local port="${1:-9050}"
  local grpc_port="${CHIMERA_BQ_EMULATOR_GRPC_PORT:-$((port + 10))}"
  local url="http://127.0.0.1:${port}"
  install
  mkdir -p "$STATE"
  if is_running; then
    if curl -sf -o /dev/null "$url/bigquery/v2/projects/test/datasets"; then
      log "already running (pid $(cat "$PIDFILE"))"
      echo "$url"
      return 0
    fi
    log "a previous emulator (pid $(cat "$PIDFILE")) does not answer on $url; stopping it"
    stop
  fi
  local data_dir
  data_dir="$(mktemp -d "${TMPDIR:-/tmp}/chimera-bq-data.XXXXXX")"
  echo "$data_dir" >"$STATE/data_dir"
  # setsid: its own process group, so `stop` can end it with any children and nothing else.
  setsid "$VENV/bin/local-bigquery" serve --host 127.0.0.1 --port "$port" --grpc-port "$grpc_port" \
    --project test --data-dir "$data_dir" >"$LOGFILE" 2>&1 </dev/null &
  echo $! >"$PIDFILE"
  local t0=$SECONDS
  until curl -sf -o /dev/null "$url/bigquery/v2/projects/test/datasets"; do
    if ! is_running; then
      log "emulator exited during startup; log follows"
      tail -n 40 "$LOGFILE" >&2 || true
      rm -f "$PIDFILE"
      return 1
    fi
    if ((SECONDS - t0 > 60)); then
      log "emulator not ready after 60 s; log follows"
      tail -n 40 "$LOGFILE" >&2 || true
      stop
      return 1
    fi
    sleep 0.25
  done
  log "ready on $url (grpc $grpc_port, pid $(cat "$PIDFILE"), $((SECONDS - t0)) s, log $LOGFILE)"
  echo "$url"
}

stop() {
  if [[ ! -f "$PIDFILE" ]]; then
    log "not running (no $PIDFILE)"
    return 0
  fi
  local pid
  pid="$(cat "$PIDFILE")"
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    fi
    log "stopped (pid $pid)"
  fi
  rm -f "$PIDFILE"
  if [[ -f "$STATE/data_dir" ]]; then
    rm -rf "$(cat "$STATE/data_dir")"
    rm -f "$STATE/data_dir"
  fi
}

case "${1:-}" in
  install) install ;;
  start) start "${2:-9050}" ;;
  stop) stop ;;
  status)
    if is_running; then echo "running (pid $(cat "$PIDFILE"))"; else echo "stopped"; exit 1; fi
    ;;
  *)
    echo "usage: $0 {install|start [PORT]|stop|status}" >&2
    exit 2
    ;;
esac
