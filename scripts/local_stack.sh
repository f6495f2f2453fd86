#!/usr/bin/env bash
# A local Prefect stack in one command: server (SQLite under the project's PREFECT_HOME, analytics
# off), a `process` work pool, every deployment in prefect.yaml, and a worker.
#
#   scripts/local_stack.sh up       start it all (idempotent), print what to run next
#   scripts/local_stack.sh down     stop worker and server (by process id)
#   scripts/local_stack.sh status
#
# Settings (environment): MASKMOTION_PREFECT_PORT (4200), MASKMOTION_POOL (maskmotion-local),
# MASKMOTION_POOL_CONCURRENCY (1: one flow run at a time on this machine, i.e. one GPU job; pipeline,
# batch generation and the nightly evaluation queue behind each other), PREFECT_HOME (<repo>/.prefect).
# Logs and pid files live in $PREFECT_HOME/stack/.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
eval "$(python -m flows)"   # PREFECT_HOME (<repo>/.prefect), no telemetry, no hub: flows/__init__.py
export MASKMOTION_PREFECT_PORT=${MASKMOTION_PREFECT_PORT:-4200}
export MASKMOTION_POOL=${MASKMOTION_POOL:-maskmotion-local}
export MASKMOTION_POOL_CONCURRENCY=${MASKMOTION_POOL_CONCURRENCY:-1}
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

up() {
  local t0=$SECONDS
  if ! alive server; then
    nohup prefect server start --host 127.0.0.1 --port "$MASKMOTION_PREFECT_PORT" >"$STACK/server.log" 2>&1 &
    echo $! >"$STACK/server.pid"
  fi
  wait_healthy 180
  echo "server healthy at $PREFECT_API_URL after $((SECONDS - t0)) s"
  prefect --no-prompt work-pool create "$MASKMOTION_POOL" --type process --overwrite >/dev/null
  prefect --no-prompt work-pool set-concurrency-limit "$MASKMOTION_POOL" "$MASKMOTION_POOL_CONCURRENCY" >/dev/null
  prefect --no-prompt deploy --all >"$STACK/deploy.log" 2>&1 || { cat "$STACK/deploy.log" >&2; exit 1; }
  if ! alive worker; then
    nohup prefect worker start --pool "$MASKMOTION_POOL" --type process >"$STACK/worker.log" 2>&1 &
    echo $! >"$STACK/worker.pid"
  fi
  cat <<MSG
stack up in $((SECONDS - t0)) s: server $PREFECT_API_URL (UI: http://127.0.0.1:${MASKMOTION_PREFECT_PORT}), pool $MASKMOTION_POOL, worker pid $(cat "$STACK/worker.pid")
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

down() {
  stop_pid worker INT   # a worker ignores one SIGTERM; SIGINT stops it cleanly
  stop_pid server TERM
}

status() {
  for name in server worker; do
    if alive "$name"; then echo "$name: running (pid $(cat "$STACK/$name.pid"))"; else echo "$name: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
