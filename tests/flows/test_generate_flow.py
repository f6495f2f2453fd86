"""The generate flow fans out as mapped tasks: on threads, and on a local Dask cluster of 2 processes."""

import numpy as np
import pytest
import yaml

from flows.common import task_runner_from_env
from flows.generate import generate_flow
from tests.tiny_world import tiny_generate_config

VIDEOS = ["heldout-000-s0", "heldout-000-s1", "heldout-000-s2"]


@pytest.mark.slow
def test_flow_on_threads_and_on_dask_make_the_same_videos(
    tiny_world, tiny_run, tmp_path, monkeypatch, prefect_harness
):
    from prefect_dask import DaskTaskRunner

    monkeypatch.setenv("MASKMOTION_WORKERS", "2")
    for runner in ("threads", "dask"):
        monkeypatch.setenv("MASKMOTION_TASK_RUNNER", runner)
        task_runner = task_runner_from_env()
        assert isinstance(task_runner, DaskTaskRunner) == (runner == "dask")
        cfg = tiny_generate_config(tiny_world, tiny_run, out_dir=str(tmp_path / runner), seeds=[0, 1, 2])
        params = tmp_path / f"{runner}.yaml"
        params.write_text(yaml.safe_dump({"generate": cfg.model_dump()}))
        rows = generate_flow.with_options(task_runner=task_runner)(params_path=str(params))
        assert [r["video_id"] for r in rows] == VIDEOS
    for vid in VIDEOS:  # same seeds, same videos, whichever runner made them
        threads, dask = (np.load(tmp_path / r / vid / "frames.npy").astype(int) for r in ("threads", "dask"))
        # Dask workers run torch with their own thread count, which changes float summation order:
        # a pixel may round to the next uint8 level, nothing more
        assert np.abs(threads - dask).max() <= 1 and (threads != dask).mean() < 1e-3


def test_unknown_runner_is_refused(monkeypatch):
    monkeypatch.setenv("MASKMOTION_TASK_RUNNER", "ray")
    with pytest.raises(ValueError, match="'threads' or 'dask'"):
        task_runner_from_env()
