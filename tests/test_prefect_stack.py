"""The local Prefect stack for real: server, process work pool, deployments, worker, a pipeline run.

Also checks what the other deployments look like once deployed (the nightly schedule of
scheduled-evaluation/nightly, the parameters of generate/batch) and that generate/batch runs on the worker
with parameters from the command line (without a checkpoint it must fail at once, naming the
setting, and not be retried). Timings are printed (``pytest -s``).
"""

import json
import re
import subprocess
import time

import pytest

from tests.project_copy import QUERY_STAGE_RUNS, copy_working_tree, env_for, free_port, run

QUERY_POOL_AND_RUN = """
import asyncio, json, sys
from prefect.client.orchestration import get_client

async def main(pool, run_id):
    async with get_client() as client:
        work_pool = await client.read_work_pool(pool)
        run = await client.read_flow_run(run_id)
        print(json.dumps({"pool_limit": work_pool.concurrency_limit, "state": run.state.type.value,
                          "message": run.state.message, "run_count": run.run_count}))

asyncio.run(main(*sys.argv[1:]))
"""


def inspect_deployment(name: str, project, **env) -> dict:
    out = run(["prefect", "deployment", "inspect", name, "--output", "json"], project, **env)
    return json.loads(out[out.index("{") :])


def check_other_deployments(project, **env) -> None:
    scheduled = inspect_deployment("scheduled-evaluation/nightly", project, **env)
    (schedule,) = scheduled["schedules"]
    assert schedule["schedule"]["cron"] == "0 3 * * *" and schedule["schedule"]["timezone"] == "UTC"
    assert schedule["active"] is True and not scheduled.get("paused")
    assert scheduled["parameters"] == {"root": "data/scheduled", "skip_unchanged": True}
    assert scheduled["global_concurrency_limit"]["limit"] == 1

    batch = inspect_deployment("generate/batch", project, **env)
    assert batch["parameters"] == {"out_dir": "data/batches/{run}"} and not batch["schedules"]
    properties = batch["parameter_openapi_schema"]["properties"]
    assert {"prompts", "sequences", "seeds", "out_dir", "overrides", "params_path"} <= set(properties)
    assert properties["prompts"]["anyOf"][0] == {"items": {"type": "string"}, "type": "array"}
    assert not batch.get("global_concurrency_limit") and batch["work_pool_name"] == "test-pool"


@pytest.mark.slow
def test_pipeline_deployment_runs_on_a_local_stack(tmp_path):
    project = copy_working_tree(tmp_path / "project")
    port = free_port()
    stack_env = {
        "MASKMOTION_PREFECT_PORT": str(port),
        "MASKMOTION_POOL": "test-pool",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    t_test = time.perf_counter()
    try:
        out = run(["scripts/local_stack.sh", "up"], project, timeout=400, **stack_env)
        assert "stack up" in out
        print("\n" + re.search(r"server healthy at .*", out).group(0), f"(test: {time.perf_counter() - t_test:.0f} s)")
        status = run(["scripts/local_stack.sh", "status"], project, **stack_env)
        assert "server: running" in status and "worker-1: running" in status and "worker-2: running" in status
        check_other_deployments(project, **stack_env)

        t_run = time.perf_counter()
        watched = run(
            [
                "prefect",
                "deployment",
                "run",
                "pipeline/default",
                "--watch",
                "--watch-timeout",
                "800",
                "--params",
                json.dumps({"targets": ["ingest"]}),
            ],
            project,
            timeout=900,
            **stack_env,
        )
        assert "Completed" in watched, watched[-2000:]
        print(
            f"pipeline/default (targets: ingest): {time.perf_counter() - t_run:.0f} s "
            "from `deployment run` to Completed"
        )
        assert (project / "data" / "clips" / "manifest.csv").is_file()
        assert (project / "data" / "raw" / "toy" / "manifest.yaml").is_file()

        # the stage flows DVC ran reported to the same server, tagged with the pipeline run
        run_id = next(
            line.split("/runs/flow-run/")[1].split()[0] for line in watched.splitlines() if "/runs/flow-run/" in line
        )
        stages = subprocess.run(
            ["python", "-c", QUERY_STAGE_RUNS, f"pipeline:{run_id}"],
            cwd=project,
            env=env_for(project, **stack_env),
            capture_output=True,
            text=True,
            check=True,
        )
        assert json.loads(stages.stdout.strip().splitlines()[-1]) == {"toyworld": "COMPLETED", "ingest": "COMPLETED"}

        # generate/batch on the worker, parameters from the command line; no checkpoint: fails at once
        batch = subprocess.run(
            [
                "prefect",
                "deployment",
                "run",
                "generate/batch",
                "--watch",
                "--watch-timeout",
                "300",
                "--params",
                json.dumps({"prompts": ["a red star runs across a blue lake"], "seeds": [0, 1]}),
            ],
            cwd=project,
            env=env_for(project, **stack_env),
            capture_output=True,
            text=True,
            timeout=400,
        )
        batch_id = re.search(r"UUID: ([0-9a-f-]{36})", batch.stdout).group(1)
        info = subprocess.run(
            ["python", "-c", QUERY_POOL_AND_RUN, "test-pool", batch_id],
            cwd=project,
            env=env_for(project, **stack_env),
            capture_output=True,
            text=True,
            check=True,
        )
        info = json.loads(info.stdout.strip().splitlines()[-1])
        assert info["pool_limit"] == 1
        assert info["state"] == "FAILED" and "generate.checkpoint_dir" in info["message"], info
        assert not (project / "data" / "batches").exists() or not any((project / "data" / "batches").iterdir())
    finally:
        subprocess.run(
            ["scripts/local_stack.sh", "down"],
            cwd=project,
            env=env_for(project, **stack_env),
            capture_output=True,
            timeout=120,
        )
    status = run(["scripts/local_stack.sh", "status"], project, **stack_env)
    assert "server: stopped" in status and "worker-1" not in status
    print(f"whole test: {time.perf_counter() - t_test:.0f} s")
