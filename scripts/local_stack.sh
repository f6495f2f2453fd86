#!/usr/bin/env bash
# A local Prefect stack in one command: server (SQLite under the project's PREFECT_HOME, or a PostgreSQL
# database of the project's own), a `process` work pool, every deployment in prefect.yaml, and workers.
#
#   scripts/local_stack.sh up       start it all (idempotent), print what to run next
#   scripts/local_stack.sh down     stop the workers and the server it started (by process id)
#   scripts/local_stack.sh workers  start again any of its workers that is not running
#   scripts/local_stack.sh status
#
# Settings (environment; none is read from a tracked file):
#   MASKMOTION_PG_URL            a PostgreSQL database for the server, e.g.
#                                postgresql://127.0.0.1:5432/maskmotion_prefect (created when missing);
#                                unset: SQLite under PREFECT_HOME (one writer: fine for one machine)
#   MASKMOTION_POOL_CONCURRENCY  flow runs at once across the pool = GPUs (default: nvidia-smi's count, or 1);
#                                pipeline, batch generation and the nightly evaluation queue for these slots
#   MASKMOTION_STACK_WORKERS     workers (2); each takes one flow run at a time (one GPU job)
#   MASKMOTION_CRASH_AFTER_S     a running flow run whose heartbeats (every 30 s) stop for this long is
#                                marked Crashed (90; 0: no such automation)
#   MASKMOTION_PREFECT_PORT (4200), MASKMOTION_POOL (maskmotion-local), PREFECT_HOME (<repo>/.prefect).
# Logs and pid files live in $PREFECT_HOME/stack/. Everything binds 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
eval "$(python -m flows)"   # PREFECT_HOME (<repo>/.prefect), no telemetry, no hub: flows/__init__.py
export MASKMOTION_PREFECT_PORT=${MASKMOTION_PREFECT_PORT:-4200}
export MASKMOTION_POOL=${MASKMOTION_POOL:-maskmotion-local}
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
export MASKMOTION_POOL_CONCURRENCY=${MASKMOTION_POOL_CONCURRENCY:-$(( gpus > 0 ? gpus : 1 ))}
export MASKMOTION_STACK_WORKERS=${MASKMOTION_STACK_WORKERS:-2}
export MASKMOTION_CRASH_AFTER_S=${MASKMOTION_CRASH_AFTER_S:-90}
# flow runs send a heartbeat this often (Prefect's minimum, 30 s), for the crash detection above
export PREFECT_FLOWS_HEARTBEAT_FREQUENCY=${PREFECT_FLOWS_HEARTBEAT_FREQUENCY:-30}
# While the database restarts the server answers 500 for a moment; a flow run that met one on a state
# update crashed (tests/test_scaleout_stack.py). Workers and flow runs retry it like a 503.
export PREFECT_CLIENT_RETRY_EXTRA_CODES=${PREFECT_CLIENT_RETRY_EXTRA_CODES:-500}
export MASKMOTION_ROOT=$ROOT
export PREFECT_API_URL="http://127.0.0.1:${MASKMOTION_PREFECT_PORT}/api"
export PREFECT_WORKER_QUERY_SECONDS=${PREFECT_WORKER_QUERY_SECONDS:-2}
STACK="$PREFECT_HOME/stack"
mkdir -p "$STACK"

alive() { [ -f "$STACK/$1.pid" ] && kill -0 "$(cat "$STACK/$1.pid")" 2>/dev/null; }

wait_healthy() {
  local deadline=$((SECONDS + ${1:-120}))
  until curl -fsS "$PREFECT_API_URL/health" >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ]; then
      echo "server not healthy after ${1:-120}s; see $STACK/server.log" >&2; tail -20 "$STACK/server.log" >&2; exit 1
    fi
    alive server || { echo "server exited; see $STACK/server.log" >&2; tail -20 "$STACK/server.log" >&2; exit 1; }
    sleep 1
  done
}

start_workers() {
  local i
  for i in $(seq "$MASKMOTION_STACK_WORKERS"); do
    alive "worker-$i" && continue
    # --limit 1: a worker is one GPU slot. setsid: its own process group, so a signal meant for this
    # script's caller does not reach it (Prefect starts each flow run in a session of its own too)
    setsid nohup prefect worker start --pool "$MASKMOTION_POOL" --type process --name "$MASKMOTION_POOL-$i" \
      --limit 1 >"$STACK/worker-$i.log" 2>&1 &
    echo $! >"$STACK/worker-$i.pid"
  done
}

up() {
  local t0=$SECONDS
  local database="SQLite under $PREFECT_HOME"
  if ! alive server; then
    if [ -n "${MASKMOTION_PG_URL:-}" ]; then
      # only the server sees the connection URL (it may hold a password)
      PREFECT_API_DATABASE_CONNECTION_URL=$(python scripts/prefect_stack.py database "$MASKMOTION_PG_URL") \
        nohup prefect server start --host 127.0.0.1 --port "$MASKMOTION_PREFECT_PORT" >"$STACK/server.log" 2>&1 &
    else
      nohup prefect server start --host 127.0.0.1 --port "$MASKMOTION_PREFECT_PORT" >"$STACK/server.log" 2>&1 &
    fi
    echo $! >"$STACK/server.pid"
  fi
  [ -n "${MASKMOTION_PG_URL:-}" ] && database="PostgreSQL database ${MASKMOTION_PG_URL##*/}"
  wait_healthy 180
  echo "server healthy at $PREFECT_API_URL ($database) after $((SECONDS - t0)) s"
  prefect --no-prompt work-pool create "$MASKMOTION_POOL" --type process --overwrite >/dev/null
  prefect --no-prompt work-pool set-concurrency-limit "$MASKMOTION_POOL" "$MASKMOTION_POOL_CONCURRENCY" >/dev/null
  prefect --no-prompt deploy --all >"$STACK/deploy.log" 2>&1 || { cat "$STACK/deploy.log" >&2; exit 1; }
  if [ "$MASKMOTION_CRASH_AFTER_S" != 0 ]; then
    python scripts/prefect_stack.py crash-detection "$MASKMOTION_CRASH_AFTER_S"
  fi
  start_workers
  cat <<MSG
stack up in $((SECONDS - t0)) s: server $PREFECT_API_URL (UI: http://127.0.0.1:${MASKMOTION_PREFECT_PORT}), $database
pool $MASKMOTION_POOL: $MASKMOTION_POOL_CONCURRENCY flow runs at once, $MASKMOTION_STACK_WORKERS workers (pids $(cat "$STACK"/worker-*.pid | xargs))
next:
  export PREFECT_API_URL=$PREFECT_API_URL
  prefect deployment run 'pipeline/default' --watch
  prefect deployment run 'generate/batch' --params '{"prompts": ["a red star runs across a blue lake"], "seeds": [0, 1]}'
  prefect deployment inspect 'scheduled-evaluation/nightly'      # nightly at 03:00 UTC
stop:
  scripts/local_stack.sh down
MSG
}

stop_pid() {  # name signal
  alive "$1" || { rm -f "$STACK/$1.pid"; return 0; }
  local pid; pid=$(cat "$STACK/$1.pid")
  pkill -"$2" -P "$pid" 2>/dev/null || true
  kill -"$2" "$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$STACK/$1.pid"
  echo "stopped $1 ($pid)"
}

workers() {  # the names of the workers this script started (pid files), numbered
  local f
  for f in "$STACK"/worker-*.pid; do [ -e "$f" ] && basename "$f" .pid; done
  true
}

down() {
  local name
  for name in $(workers); do
    stop_pid "$name" INT   # a worker ignores one SIGTERM; SIGINT stops it cleanly
  done
  stop_pid server TERM
}

status() {
  local name
  for name in server $(workers); do
    if alive "$name"; then echo "$name: running (pid $(cat "$STACK/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  workers) start_workers && status ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status|workers" >&2; exit 2 ;;
esac
