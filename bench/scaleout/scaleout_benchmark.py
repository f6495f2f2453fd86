"""Scale-out on this machine: Prefect workers and Dask workers, 1 against 2, on the same work.

    python -m bench.scaleout.scaleout_benchmark [--runs 4] [--videos 6] [--dask-videos 8] [--steps 10]

* **Prefect**: the local stack (scripts/local_stack.sh) on a PostgreSQL cluster of its own
  (tests/private_postgres.py), pool limit 2; ``--runs`` generate/batch runs of ``--videos`` videos each,
  first with 1 worker, then with 2. Wall time from submitting the runs to the last one's end.
* **Dask**: scripts/dask_cluster.sh with 1, then 2 worker processes; one generate flow of
  ``--dask-videos`` videos (MASKMOTION_TASK_RUNNER=dask), into a fresh folder each time. Videos per
  minute from the flow's call to its end (the workers' start-up and Prefect's temporary server excluded;
  each worker's first video loads the model).

The work is the tests' tiny world (32x32, 6 frames, a 4-step checkpoint, ``--steps`` denoising steps):
it measures what scaling out adds or saves around small jobs, not a real model's speed. Writes
bench/scaleout/scaleout_results.md and .json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

from tests.private_postgres import PrivatePostgres
from tests.project_copy import REPO, env_for, free_port, run
from tests.tiny_world import build_tiny_world, tiny_generate_config, tiny_train_config

RESULTS = Path(__file__).with_name("scaleout_results.md")

# the first flow call starts Prefect's temporary server: a trivial flow first, so it is not timed
RUN_DASK_FLOW = """
import json, sys, time
from prefect import flow
from flows.generate import generate_flow

@flow(name="warm-up")
def warm_up():
    pass

warm_up()
t0 = time.perf_counter()
rows = generate_flow(params_path=sys.argv[1])
print(json.dumps({"videos": len(rows), "seconds": time.perf_counter() - t0}))
"""


def tiny_params(work: Path, steps: int) -> Path:
    from tasks.train.stage import train

    world = build_tiny_world(work / "world")
    train(tiny_train_config(world, work / "run", steps=4, checkpoint_every=4))
    params = work / "tiny.yaml"
    cfg = tiny_generate_config(world, work / "run", num_inference_steps=steps)
    params.write_text(yaml.safe_dump({"generate": cfg.model_dump()}))
    return params


def client(env: dict, *args: str) -> list:
    done = subprocess.run(
        [sys.executable, "-m", "tests.stack_client", *args],
        cwd=REPO,
        env=env_for(REPO, **env),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def prefect_runs(env: dict, params: Path, out: Path, runs: int, videos: int) -> float:
    """Seconds from submitting ``runs`` batch runs to the end of the last one."""
    batches = [
        json.dumps({"params_path": str(params), "out_dir": str(out / f"run-{k}"), "seeds": list(range(videos))})
        for k in range(runs)
    ]
    t0 = time.time()
    ids = client(env, "submit", "generate/batch", *batches)
    while True:
        states = client(env, "runs", *ids)
        if all(s["state"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} for s in states):
            break
        time.sleep(1)
    assert all(s["state"] == "COMPLETED" for s in states), states
    return max(s["end"] for s in states) - t0


def bench_prefect(work: Path, params: Path, args) -> dict:
    pg = PrivatePostgres().start()
    port = free_port()
    env = {
        "MASKMOTION_PREFECT_PORT": str(port),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_HOME": str(work / "prefect"),
        "MASKMOTION_PG_URL": pg.database_url("maskmotion_prefect"),
        "MASKMOTION_POOL": "bench",
        "MASKMOTION_POOL_CONCURRENCY": "2",
        "MASKMOTION_STACK_WORKERS": "1",
        "OMP_NUM_THREADS": "1",
    }
    seconds = {}
    try:
        for workers in (1, 2):  # `up` again starts the second worker and leaves the rest as it is
            env["MASKMOTION_STACK_WORKERS"] = str(workers)
            run(["scripts/local_stack.sh", "up"], REPO, timeout=400, **env)
            seconds[str(workers)] = prefect_runs(env, params, work / f"prefect-{workers}", args.runs, args.videos)
            print(f"prefect, {workers} worker(s): {args.runs} runs in {seconds[str(workers)]:.1f} s", flush=True)
    finally:
        subprocess.run(["scripts/local_stack.sh", "down"], cwd=REPO, env=env_for(REPO, **env), timeout=120)
        pg.stop()
    return {"runs": args.runs, "videos_per_run": args.videos, "seconds": seconds}


def bench_dask(work: Path, params: Path, args) -> dict:
    out = {}
    for workers in (1, 2):
        port = free_port()
        env = {
            "MASKMOTION_DASK_PORT": str(port),
            "MASKMOTION_DASK_WORKERS": str(workers),
            "MASKMOTION_DASK_DIR": str(work / f"dask-{workers}"),
            "OMP_NUM_THREADS": "1",
        }
        cfg = yaml.safe_load(params.read_text())
        cfg["generate"].update(out_dir=str(work / f"dask-out-{workers}"), seeds=list(range(args.dask_videos)))
        batch = work / f"dask-{workers}.yaml"
        batch.write_text(yaml.safe_dump(cfg))
        try:
            run(["scripts/dask_cluster.sh", "up"], REPO, timeout=300, **env)
            flow_env = {
                **env,
                "MASKMOTION_TASK_RUNNER": "dask",
                "MASKMOTION_DASK_ADDRESS": f"tcp://127.0.0.1:{port}",
                "PREFECT_HOME": str(work / "prefect-ephemeral"),
            }
            done = run([sys.executable, "-c", RUN_DASK_FLOW, str(batch)], REPO, timeout=1800, **flow_env)
        finally:
            subprocess.run(["scripts/dask_cluster.sh", "down"], cwd=REPO, env=env_for(REPO, **env), timeout=120)
        result = json.loads(next(line for line in reversed(done.splitlines()) if line.startswith("{")))
        out[str(workers)] = {**result, "videos_per_minute": 60 * result["videos"] / result["seconds"]}
        print(f"dask, {workers} worker(s): {out[str(workers)]}", flush=True)
    return out


def write_results(prefect: dict, dask: dict, args) -> None:
    load = os.getloadavg()
    info = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, no GPU",
        "load_average_at_end": [round(x, 1) for x in load],
        "steps": args.steps,
        "prefect": prefect,
        "dask": dask,
    }
    RESULTS.with_suffix(".json").write_text(json.dumps(info, indent=2) + "\n")
    p1, p2 = (prefect["seconds"][k] for k in ("1", "2"))
    d1, d2 = (dask[k] for k in ("1", "2"))
    dask_gain = d2["videos_per_minute"] / d1["videos_per_minute"]
    RESULTS.write_text(
        f"""# Scale-out on this machine (`python -m bench.scaleout.scaleout_benchmark`)

{info["when"]}, {info["machine"]}; load average at the end {info["load_average_at_end"]} (the machine is shared).
The tests' tiny world: 32x32, 6 frames, {args.steps} denoising steps a video.

| Prefect: {prefect["runs"]} generate/batch runs of {prefect["videos_per_run"]} videos, pool limit 2 | wall time |
|---|---|
| 1 worker | {p1:.1f} s |
| 2 workers | {p2:.1f} s ({p1 / p2:.2f}x) |

| Dask: one flow of {d1["videos"]} videos | seconds | videos per minute |
|---|---|---|
| 1 worker process | {d1["seconds"]:.1f} | {d1["videos_per_minute"]:.1f} |
| 2 worker processes | {d2["seconds"]:.1f} | {d2["videos_per_minute"]:.1f} ({dask_gain:.2f}x) |
"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--dask-videos", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--only", choices=["prefect", "dask"], help="measure one part, keep the other's last figures")
    args = parser.parse_args()
    last = json.loads(RESULTS.with_suffix(".json").read_text()) if args.only else {}
    with tempfile.TemporaryDirectory(prefix="maskmotion-scaleout-") as tmp:
        work = Path(tmp)
        params = tiny_params(work, args.steps)
        prefect = bench_prefect(work, params, args) if args.only != "dask" else last["prefect"]
        dask = bench_dask(work, params, args) if args.only != "prefect" else last["dask"]
    write_results(prefect, dask, args)
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
