"""The local Prefect stack for real: server, process work pool, deployments, worker, a pipeline run."""

import json
import subprocess

import pytest

from tests.project_copy import copy_working_tree, env_for, free_port, run

QUERY_STAGE_RUNS = """
import asyncio, json, sys
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

async def main(tag):
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))
        names = {}
        for r in runs:
            flow = await client.read_flow(r.flow_id)
            names[flow.name] = r.state.type.value
        print(json.dumps(names))

asyncio.run(main(sys.argv[1]))
"""


@pytest.mark.slow
def test_pipeline_deployment_runs_on_a_local_stack(tmp_path):
    project = copy_working_tree(tmp_path / "project")
    port = free_port()
    stack_env = {"MASKMOTION_PREFECT_PORT": str(port), "MASKMOTION_POOL": "test-pool",
                 "PREFECT_API_URL": f"http://127.0.0.1:{port}/api"}
    try:
        out = run(["scripts/local_stack.sh", "up"], project, timeout=400, **stack_env)
        assert "stack up" in out
        status = run(["scripts/local_stack.sh", "status"], project, **stack_env)
        assert "server: running" in status and "worker: running" in status

        watched = run(["prefect", "deployment", "run", "pipeline/default", "--watch",
                       "--watch-timeout", "800", "--params", json.dumps({"targets": ["ingest"]})],
                      project, timeout=900, **stack_env)
        assert "Completed" in watched, watched[-2000:]
        assert (project / "data" / "clips" / "manifest.csv").is_file()
        assert (project / "data" / "raw" / "toy" / "manifest.yaml").is_file()

        # the stage flows DVC ran reported to the same server, tagged with the pipeline run
        run_id = next(line.split("/runs/flow-run/")[1].split()[0] for line in watched.splitlines()
                      if "/runs/flow-run/" in line)
        stages = subprocess.run(["python", "-c", QUERY_STAGE_RUNS, f"pipeline:{run_id}"], cwd=project,
                                env=env_for(project, **stack_env), capture_output=True, text=True, check=True)
        assert json.loads(stages.stdout.strip().splitlines()[-1]) == {"toyworld": "COMPLETED",
                                                                      "ingest": "COMPLETED"}
    finally:
        subprocess.run(["scripts/local_stack.sh", "down"], cwd=project, env=env_for(project, **stack_env),
                       capture_output=True, timeout=120)
    status = run(["scripts/local_stack.sh", "status"], project, **stack_env)
    assert "server: stopped" in status and "worker: stopped" in status
