#!/usr/bin/env bash
# A Dask cluster as separate processes, for mapped generation (MASKMOTION_TASK_RUNNER=dask): one
# `dask scheduler` and N `dask worker` processes (one thread each: one model, one GPU), all on 127.0.0.1.
#
#   scripts/dask_cluster.sh up       start it (idempotent), print the address to export
#   scripts/dask_cluster.sh down     stop the workers and the scheduler it started (by process id)
#   scripts/dask_cluster.sh status
#
# Settings (environment): MASKMOTION_DASK_PORT (8786), MASKMOTION_DASK_WORKERS (2),
# MASKMOTION_DASK_DIR (<PREFECT_HOME>/dask: pid files, logs, worker scratch space).
# On a machine with GPUs, worker i sees only GPU i-1 (CUDA_VISIBLE_DEVICES), round robin.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$ROOT/.venv/bin:$PATH"
eval "$(python -m flows)"   # the project's environment defaults (flows/__init__.py)
# the workers unpickle our tasks by module name: they must import this checkout
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
PORT=${MASKMOTION_DASK_PORT:-8786}
WORKERS=${MASKMOTION_DASK_WORKERS:-2}
DIR=${MASKMOTION_DASK_DIR:-$PREFECT_HOME/dask}
ADDRESS="tcp://127.0.0.1:$PORT"
mkdir -p "$DIR"

alive() { [ -f "$DIR/$1.pid" ] && kill -0 "$(cat "$DIR/$1.pid")" 2>/dev/null; }

up() {
  if ! alive scheduler; then
    # the dashboard is off: it needs bokeh, and nothing here reads it
    nohup dask scheduler --host 127.0.0.1 --port "$PORT" --no-dashboard >"$DIR/scheduler.log" 2>&1 &
    echo $! >"$DIR/scheduler.pid"
  fi
  local deadline=$((SECONDS + 60))
  until python -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 1)" 2>/dev/null; do
    alive scheduler || { echo "scheduler exited; see $DIR/scheduler.log" >&2; tail -20 "$DIR/scheduler.log" >&2; exit 1; }
    [ $SECONDS -ge $deadline ] && { echo "scheduler not listening after 60 s" >&2; exit 1; }
    sleep 0.5
  done
  local gpus i
  gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)
  for i in $(seq "$WORKERS"); do
    alive "worker-$i" && continue
    (
      [ "$gpus" -gt 0 ] && export CUDA_VISIBLE_DEVICES=$(((i - 1) % gpus))
      # --preload: torch and diffusers are imported while the cluster starts, not by the first video
      exec nohup dask worker "$ADDRESS" --host 127.0.0.1 --nworkers 1 --nthreads 1 --no-dashboard \
        --name "worker-$i" --local-directory "$DIR/worker-$i" --preload tasks.generate.stage \
        >"$DIR/worker-$i.log" 2>&1
    ) &
    echo $! >"$DIR/worker-$i.pid"
  done
  python - "$ADDRESS" "$WORKERS" <<'PY'
import sys
from distributed import Client

with Client(sys.argv[1], timeout=60) as client:  # returns once every worker has joined
    client.wait_for_workers(int(sys.argv[2]), timeout=120)
PY
  echo "dask cluster up: scheduler $ADDRESS, $WORKERS workers (pids $(cat "$DIR"/worker-*.pid | xargs))"
  echo "  export MASKMOTION_TASK_RUNNER=dask MASKMOTION_DASK_ADDRESS=$ADDRESS"
}

stop_pid() {  # name
  alive "$1" || { rm -f "$DIR/$1.pid"; return 0; }
  local pid; pid=$(cat "$DIR/$1.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$DIR/$1.pid"
  echo "stopped $1 ($pid)"
}

names() { local f; for f in "$DIR"/worker-*.pid; do [ -e "$f" ] && basename "$f" .pid; done; true; }

case "${1:-}" in
  up) up ;;
  down) for n in $(names); do stop_pid "$n"; done; stop_pid scheduler ;;
  status) for n in scheduler $(names); do
      if alive "$n"; then echo "$n: running (pid $(cat "$DIR/$n.pid"))"; else echo "$n: stopped"; fi
    done ;;
  *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
