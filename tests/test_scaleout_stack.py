"""The local stack scaled out, and the faults it meets, for real: a Prefect server on PostgreSQL, a
`process` pool whose limit is 2 (two GPUs), two workers, `generate/batch` runs of the tiny world.

One stack for the module (starting it costs about a minute): `scripts/local_stack.sh up` on a copy of
this working tree, its database in a PostgreSQL cluster of the tests' own (tests/private_postgres.py),
so that a test can restart the database. The tests run in file order; the last one kills a worker.
What each fault did is printed (``pytest -s``). Every wait has a deadline; the fixtures stop what they
started by process id.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.private_postgres import PrivatePostgres
from tests.project_copy import copy_working_tree, env_for, free_port, run
from tests.tiny_world import tiny_generate_config

pytestmark = pytest.mark.slow

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class Stack:
    """The stack a test talks to: submit batch runs, read their states, find its processes."""

    def __init__(self, project: Path, env: dict[str, str], params: Path, out: Path):
        self.project, self.env, self.params, self.out = project, env, params, out

    def client(self, *args: str) -> list:
        done = subprocess.run(
            ["python", "-m", "tests.stack_client", *args],
            cwd=self.project,
            env=env_for(self.project, **self.env),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return json.loads(done.stdout.strip().splitlines()[-1])

    def batch(self, name: str, n_videos: int, **overrides) -> dict:
        """generate/batch's parameters: the tiny world's held-out sequence with seeds 0..n-1."""
        folder = {"params_path": str(self.params), "out_dir": str(self.out / name), "seeds": list(range(n_videos))}
        return {**folder, "overrides": overrides} if overrides else folder

    def submit(self, *parameter_sets: dict, deployment: str = "generate/batch") -> list[str]:
        return self.client("submit", deployment, *map(json.dumps, parameter_sets))

    def runs(self, ids: list[str]) -> list[dict]:
        return self.client("runs", *ids)

    def wait(self, ids: list[str], done, deadline_s: float, every_s: float = 1.0) -> list[dict]:
        """Poll the runs until ``done(runs)``; fail with their states at the deadline."""
        end = time.monotonic() + deadline_s
        while True:
            runs = self.runs(ids)
            if done(runs):
                return runs
            assert time.monotonic() < end, f"not done after {deadline_s:.0f} s: {runs}"
            time.sleep(every_s)

    def pid(self, name: str) -> int:
        return int((self.project / ".prefect" / "stack" / f"{name}.pid").read_text())

    def script(self, command: str, timeout: float = 400) -> str:
        return run(["scripts/local_stack.sh", command], self.project, timeout=timeout, **self.env)


def complete_videos(folder: Path) -> dict[str, int]:
    """{video id: mtime (ns) of its meta.json} for the visible video folders; asserts each is whole."""
    videos = {}
    for video in sorted(p for p in folder.glob("*") if p.is_dir() and not p.name.startswith(".")):
        files = {p.name for p in video.iterdir()}
        assert {"meta.json", "video.mp4", "video.gif", "sheet.png", "frames.npy"} <= files, (video, files)
        videos[video.name] = (video / "meta.json").stat().st_mtime_ns
    return videos


def all_final(runs: list[dict]) -> bool:
    return all(r["state"] in FINAL for r in runs)


@pytest.fixture(scope="module")
def postgres():
    pg = PrivatePostgres().start()  # no PostgreSQL binaries or no start: an error saying so, not a skip
    yield pg
    pg.stop()


@pytest.fixture(scope="module")
def stack(postgres, tiny_world, tiny_run, tmp_path_factory):
    root = tmp_path_factory.mktemp("scaleout")
    project = copy_working_tree(root / "project")
    params = root / "tiny.yaml"
    cfg = tiny_generate_config(tiny_world, tiny_run, num_inference_steps=2)
    params.write_text(yaml.safe_dump({"generate": cfg.model_dump()}))
    port = free_port()
    env = {
        "MASKMOTION_PREFECT_PORT": str(port),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "MASKMOTION_PG_URL": postgres.database_url("maskmotion_prefect"),
        "MASKMOTION_POOL": "scaleout",
        "MASKMOTION_POOL_CONCURRENCY": "2",
        "MASKMOTION_STACK_WORKERS": "2",
        "MASKMOTION_CRASH_AFTER_S": "45",  # heartbeats every 30 s (Prefect's minimum)
        "OMP_NUM_THREADS": "1",  # two flow runs share 2 cores
    }
    found = Stack(project, env, params, root / "out")
    try:
        out = found.script("up")
        assert "PostgreSQL database maskmotion_prefect" in out, out
        assert "2 flow runs at once, 2 workers" in out, out
        yield found
    finally:
        subprocess.run(
            ["scripts/local_stack.sh", "down"],
            cwd=project,
            env=env_for(project, **env),
            capture_output=True,
            timeout=120,
        )


def test_the_server_runs_on_its_own_postgres_database(stack, postgres):
    status = stack.script("status")
    assert all(f"{n}: running" in status for n in ("server", "worker-1", "worker-2")), status
    tables = subprocess.run(
        ["psql", postgres.database_url("maskmotion_prefect"), "-tAc", "SELECT count(*) FROM deployment"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert tables.returncode == 0, tables.stderr
    assert int(tables.stdout) == 3  # pipeline/default, generate/batch, scheduled-evaluation/nightly


def test_two_batch_runs_at_once_the_rest_queue_and_all_outlive_a_database_restart(stack, postgres):
    ids = stack.submit(*(stack.batch(f"pool-{k}", 4) for k in range(3)))
    # the nightly evaluation queues for a GPU slot too (this copy has no checkpoint: it fails at once)
    ids += stack.submit({"skip_unchanged": False}, deployment="scheduled-evaluation/nightly")
    at_restart = stack.wait(ids, lambda rs: any(r["state"] == "RUNNING" for r in rs), 240, every_s=0.5)
    postgres.restart()
    print(f"\ndatabase restarted while: {[r['name'] for r in at_restart]}")
    *batches, nightly = stack.wait(ids, all_final, 300)
    assert [r["state"] for r in batches] == ["COMPLETED"] * 3, batches
    assert nightly["state"] == "FAILED" and "checkpoint" in nightly["message"], nightly
    for k in range(3):
        assert len(complete_videos(stack.out / f"pool-{k}")) == 4
    # the pool's limit, read from when a worker took each run into a slot (Pending), not from when its
    # process got going: a tiny batch can end before a busy machine has started the next flow process
    first, second, third = sorted(batches, key=lambda r: r["admitted"])
    print(
        "batch runs, then nightly (admitted, start, end) s after the first was admitted:",
        [tuple(round(r[k] - first["admitted"]) for k in ("admitted", "start", "end")) for r in batches + [nightly]],
    )
    assert second["admitted"] < first["end"], "the pool never held two runs at once"
    for queued in (third, nightly):
        assert queued["admitted"] >= min(first["end"], second["end"]), "three runs held slots past a limit of 2"


def test_the_server_restarted_during_a_run(stack):
    (run_id,) = stack.submit(stack.batch("server-restart", 8))
    stack.wait([run_id], lambda rs: rs[0]["state"] == "RUNNING", 240, every_s=0.5)
    server = psutil.Process(stack.pid("server"))
    server.terminate()
    server.wait(60)
    time.sleep(5)
    stack.script("up")  # starts the server again (and any worker that gave up meanwhile)
    (after,) = stack.wait([run_id], all_final, 240)
    videos = complete_videos(stack.out / "server-restart")
    print(f"\nafter a server restart the run is {after['name']} ({after['message']}), {len(videos)} of 8 videos")
    # reported correctly: Completed only when the whole batch is there
    assert (after["state"] == "COMPLETED") == (len(videos) == 8), (after, sorted(videos))


def flow_run_processes(worker: psutil.Process) -> tuple[str, list[psutil.Process]]:
    """The flow run id a worker is running and its processes (Prefect starts them in a session of
    their own, so a signal to the worker's process group would not reach them)."""
    tree = worker.children(recursive=True)
    run_id = next(p.environ()["PREFECT__FLOW_RUN_ID"] for p in tree if "PREFECT__FLOW_RUN_ID" in p.environ())
    return run_id, tree


def test_killed_workers_crash_their_runs_and_reruns_finish_the_batches(stack):
    """Two runs, one per worker. Worker 1 is SIGKILLed alone; worker 2's machine "dies": its flow run is
    frozen (SIGSTOP) so it can report nothing, then the worker and the flow run are SIGKILLed."""
    # 8 denoising steps: videos slow enough that both runs are still mid-batch when one has begun
    batches = [stack.batch(f"killed-{i}", 6, num_inference_steps=8) for i in (1, 2)]
    ids = stack.submit(*batches)
    folders = dict(zip(ids, (stack.out / "killed-1", stack.out / "killed-2")))
    end = time.monotonic() + 240
    while not all(f.is_dir() and complete_videos(f) for f in folders.values()):
        assert time.monotonic() < end, stack.runs(ids)
        time.sleep(0.5)
    workers = [psutil.Process(stack.pid(f"worker-{i}")) for i in (1, 2)]
    (run_1, tree_1), (run_2, tree_2) = map(flow_run_processes, workers)
    for process in tree_2:
        process.suspend()
    killed_at = time.time()
    for worker in workers:
        worker.send_signal(signal.SIGKILL)
    psutil.wait_procs(workers, timeout=30)
    time.sleep(2)
    outlived = [" ".join(p.cmdline()[1:4]) for p in tree_1 if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    for process in tree_1 + tree_2:  # the flow runs' processes go too
        if process.is_running():
            process.send_signal(signal.SIGKILL)
    psutil.wait_procs(tree_1 + tree_2, timeout=30)
    done_before = {run_id: complete_videos(folders[run_id]) for run_id in ids}  # every visible folder whole
    leftovers = {run_id: sorted(p.name for p in folders[run_id].glob(".*")) for run_id in ids}
    crashed = {r["id"]: r for r in stack.wait(ids, all_final, 180, every_s=2)}
    for label, run_id in (("worker SIGKILLed alone", run_1), ("worker and flow run gone at once", run_2)):
        r = crashed[run_id]
        print(
            f"\n{label}: {len(done_before[run_id])} of 6 videos done, hidden temp folders {leftovers[run_id]}; "
            f"the run became {r['name']} ({r['message']}) {r['end'] - killed_at:.0f} s after the kill"
        )
    print(f"flow run processes alive 2 s after worker 1's SIGKILL (then SIGKILLed): {outlived}")
    assert [crashed[i]["state"] for i in ids] == ["CRASHED", "CRASHED"], crashed
    # nothing reported for the frozen run: the heartbeat automation of scripts/local_stack.sh marked it
    assert "no heartbeat" in crashed[run_2]["message"], crashed[run_2]

    stack.script("workers")  # both workers again
    reruns = stack.wait(stack.submit(*batches), all_final, 300)
    assert [r["state"] for r in reruns] == ["COMPLETED", "COMPLETED"], reruns
    for run_id in ids:
        done_after = complete_videos(folders[run_id])
        assert len(done_after) == 6
        # the videos made before the kill were kept (same job key), not made again
        assert {v: done_after[v] for v in done_before[run_id]} == done_before[run_id]
