"""Mapped generation on a Dask cluster of separate processes (scripts/dask_cluster.sh): a `dask scheduler`
and two `dask worker` processes on 127.0.0.1, reached through MASKMOTION_DASK_ADDRESS like a cluster on
other machines. Both workers must take videos, and the videos must be whole."""

import pytest
import yaml

from flows.common import task_runner_from_env
from flows.generate import generate_flow
from tests.project_copy import REPO, free_port, run
from tests.tiny_world import tiny_generate_config


@pytest.mark.slow
def test_mapped_generation_on_a_dask_cluster_of_two_worker_processes(
    tiny_world, tiny_run, tmp_path, monkeypatch, prefect_harness
):
    from distributed import Client, get_task_stream

    port = free_port()
    env = {
        "MASKMOTION_DASK_PORT": str(port),
        "MASKMOTION_DASK_WORKERS": "2",
        "MASKMOTION_DASK_DIR": str(tmp_path / "dask"),
    }
    address = f"tcp://127.0.0.1:{port}"
    cfg = tiny_generate_config(tiny_world, tiny_run, out_dir=str(tmp_path / "out"), seeds=[0, 1, 2, 3])
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"generate": cfg.model_dump()}))
    try:
        assert address in run(["scripts/dask_cluster.sh", "up"], REPO, timeout=300, **env)
        monkeypatch.setenv("MASKMOTION_TASK_RUNNER", "dask")
        monkeypatch.setenv("MASKMOTION_DASK_ADDRESS", address)
        with Client(address, timeout=60) as client, get_task_stream(client) as stream:
            rows = generate_flow.with_options(task_runner=task_runner_from_env())(params_path=str(params))
        workers = {task["worker"] for task in stream.data}
    finally:
        run(["scripts/dask_cluster.sh", "down"], REPO, timeout=120, **env)
    assert [r["video_id"] for r in rows] == [f"heldout-000-s{seed}" for seed in range(4)]
    for row in rows:
        assert {"meta.json", "video.mp4", "frames.npy"} <= {
            p.name for p in (tmp_path / "out" / row["video_id"]).iterdir()
        }
    assert len(workers) == 2, f"the videos ran on {workers}, not on both worker processes"
    assert "running" not in run(["scripts/dask_cluster.sh", "status"], REPO, **env)  # down stopped them all
