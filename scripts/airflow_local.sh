#!/usr/bin/env bash
# Run this repository's DAGs on a local Airflow, without Docker: `airflow standalone` (scheduler,
# dag-processor, triggerer and api-server; SQLite metadata database, LocalExecutor) with the demo
# organisation of config/local.yaml.
#
#   scripts/airflow_local.sh            # then http://127.0.0.1:8080 (no login: every user is admin)
#
# AIRFLOW_HOME is airflow_home/ in the repository (gitignored): delete it to start from scratch. The
# DAGs are read from dags/, $ESN_CONFIG defaults to config/local.yaml, the pools esn_warehouse (1) and
# esn_extract (4) are created, and the DAGs run once parsed (not paused): esn_daily processes yesterday,
# then esn_network follows its publish. Settings (environment variables):
#   ESN_AIRFLOW_PORT          the api-server's port on 127.0.0.1 (default 8080)
#   ESN_CONFIG                another configuration file
#   ESN_DEMO_BACKFILL_DAYS    days before yesterday to queue as an esn_daily backfill at the first start
#                             (default 0: none)
#   AIRFLOW                   the airflow executable (default .venv/bin/airflow, else the one on PATH)
# Stop it with Ctrl-C.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"   # the relative paths of config/local.yaml are read from here

AIRFLOW="${AIRFLOW:-}"
if [ -z "$AIRFLOW" ]; then
  if [ -x "$REPO/.venv/bin/airflow" ]; then AIRFLOW="$REPO/.venv/bin/airflow"; else AIRFLOW="$(command -v airflow || true)"; fi
fi
if [ -z "$AIRFLOW" ] || [ ! -x "$AIRFLOW" ]; then
  echo "airflow_local.sh: no airflow executable: install the project (uv sync) or set AIRFLOW" >&2
  exit 1
fi
# standalone starts its components as `airflow ...` from PATH: the same executable
export PATH="$(dirname "$AIRFLOW"):$PATH"
PORT="${ESN_AIRFLOW_PORT:-8080}"
BACKFILL_DAYS="${ESN_DEMO_BACKFILL_DAYS:-0}"
case "$PORT$BACKFILL_DAYS" in *[!0-9]*) echo "airflow_local.sh: ESN_AIRFLOW_PORT and ESN_DEMO_BACKFILL_DAYS must be numbers" >&2; exit 1;; esac

export AIRFLOW_HOME="$REPO/airflow_home"
export AIRFLOW__CORE__DAGS_FOLDER="$REPO/dags"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS:-True}"
# the api-server on loopback only (every user is admin), and the tasks' execution API on the same port
export AIRFLOW__API__HOST=127.0.0.1
export AIRFLOW__API__PORT="$PORT"
export AIRFLOW__API__BASE_URL="http://127.0.0.1:$PORT"
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL="http://127.0.0.1:$PORT/execution/"
# standalone starts the scheduler with the api-server, which can take minutes to answer on a busy
# machine: a task queued meanwhile waits for it (retries with growing waits) instead of failing its try
export AIRFLOW__WORKERS__EXECUTION_API_RETRIES="${AIRFLOW__WORKERS__EXECUTION_API_RETRIES:-12}"
export ESN_CONFIG="${ESN_CONFIG:-$REPO/config/local.yaml}"
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$AIRFLOW_HOME"

echo "airflow_local.sh: AIRFLOW_HOME=$AIRFLOW_HOME, dags from $AIRFLOW__CORE__DAGS_FOLDER, ESN_CONFIG=$ESN_CONFIG"
"$AIRFLOW" db migrate > "$AIRFLOW_HOME/db-migrate.log" 2>&1 \
  || { echo "airflow_local.sh: airflow db migrate failed; see $AIRFLOW_HOME/db-migrate.log" >&2; exit 1; }
"$AIRFLOW" pools set esn_warehouse 1 "esn-metrics warehouse writers (one at a time)" > /dev/null
"$AIRFLOW" pools set esn_extract 4 "esn-metrics source extractions (parallel API calls at most)" > /dev/null

marker="$AIRFLOW_HOME/.esn-demo-backfill"
if [ "$BACKFILL_DAYS" -gt 0 ] && [ ! -e "$marker" ]; then
  # a backfill needs the serialised DAG; one day at a time; yesterday is the scheduled run's
  "$AIRFLOW" dags reserialize > /dev/null
  "$AIRFLOW" backfill create --dag-id esn_daily --max-active-runs 1 \
    --from-date "$(date -u -d "-$((BACKFILL_DAYS + 1)) days" +%F)" --to-date "$(date -u -d "-2 days" +%F)"
  touch "$marker"
fi

echo "airflow_local.sh: starting airflow standalone on http://127.0.0.1:$PORT (Ctrl-C stops it)"
exec "$AIRFLOW" standalone
