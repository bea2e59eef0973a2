#!/usr/bin/env bash
# Run every chimera benchmark, one heavy benchmark at a time, writing benchmarks/results/*.json and a log.
#
#   benchmarks/run_all.sh            # full sizes (~35-45 min on a loaded 2-core machine)
#   benchmarks/run_all.sh --quick    # smoke run of every script (~5 min)
#
# Run from anywhere; it changes to the repository root and uses .venv/bin/python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
QUICK=""
if [[ "${1:-}" == "--quick" ]]; then QUICK="--quick"; fi
mkdir -p benchmarks/results
LOG=benchmarks/results/run_all${QUICK:+-quick}.log
: > "$LOG"
run() {
  echo "=== $* (load $(cut -d' ' -f1-3 /proc/loadavg), $(date -u +%H:%M:%SZ))" | tee -a "$LOG"
  "$@" 2>&1 | tee -a "$LOG"
}
# 1 + 2. Ingestion at 1x/2x/4x with both floors, the Dagster-run figure, the 1x run without write audits,
#        and the naive baseline (ingest itself writes in bounded blocks of 65 trade dates).
run "$PY" -m benchmarks.bench_ingest $QUICK
# 3. The real batch through the whole graph (CLI default instance, then one planned event per asset),
#    each followed by the no-op graph over the same partitions (Dagster's bookkeeping alone).
run "$PY" -m benchmarks.bench_full_graph $QUICK --variants default,planned_subset
# 3b. Ephemeral vs persistent (SQLite, as under `dagster dev`) instance, on one month only.
run "$PY" -m benchmarks.bench_full_graph --quick --variants default,sqlite --no-noop --tag instances
# 4. One new trade date after the history.
run "$PY" -m benchmarks.bench_incremental $QUICK
# 6. Issue 15: ms per partition-asset event for each instance storage (PostgreSQL from .ci/postgres.sh),
#    the real batch through chimera's default instance vs a bare pandas computation, UI vs CLI, and one
#    new trade date through the sensors.
export CHIMERA_TEST_POSTGRES_URL="${CHIMERA_TEST_POSTGRES_URL:-$(bash .ci/postgres.sh start 55432)}"
run "$PY" -m benchmarks.bench_full_graph --start 2024-01-01 --end 2024-03-29 --no-graph --tag event_storage \
    --variants memory,sqlite_stock,sqlite_batched,postgres_stock,postgres_batched
run "$PY" -m benchmarks.bench_full_graph $QUICK --variants chimera --no-noop --bare --tag instance
run "$PY" -m benchmarks.bench_ui_backfill $QUICK
run "$PY" -m benchmarks.bench_sensor_latency
echo "=== done $(date -u +%H:%M:%SZ); results in benchmarks/results/" | tee -a "$LOG"
