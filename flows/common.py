"""What every stage flow shares: reading its params section, and a markdown summary artifact."""

from __future__ import annotations

import json
import os
from typing import Callable

from prefect import tags
from prefect.artifacts import create_markdown_artifact

from tasks.params import DEFAULT_PARAMS, ConfigT, load_stage_config


# Set by the pipeline flow for the `dvc repro` it runs, so every stage run carries the pipeline's tag.
PIPELINE_TAG_ENV = "MASKMOTION_PIPELINE_TAG"


def run_stage(stage_flow: Callable, **kwargs):
    """Entry point of ``python -m flows.<stage>``: run the flow, tagged with the pipeline run if any."""
    tag = os.environ.get(PIPELINE_TAG_ENV)
    with tags(*([tag] if tag else [])):
        return stage_flow(**kwargs)


def task_runner_from_env():
    """The task runner for flows that fan out (generate): a setting, not code.

    ``MASKMOTION_TASK_RUNNER=threads`` (default) runs mapped tasks in a thread pool of
    ``MASKMOTION_WORKERS`` (1: one model, one machine). ``dask`` uses prefect-dask: the cluster at
    ``MASKMOTION_DASK_ADDRESS`` (e.g. ``tcp://scheduler:8786``, one worker per GPU), or a local
    cluster of ``MASKMOTION_WORKERS`` processes when no address is given.
    """
    kind = os.environ.get("MASKMOTION_TASK_RUNNER", "threads")
    workers = int(os.environ.get("MASKMOTION_WORKERS", "1"))
    if kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=workers)
    if kind == "dask":
        from prefect_dask import DaskTaskRunner

        address = os.environ.get("MASKMOTION_DASK_ADDRESS")
        if address:
            return DaskTaskRunner(address=address)
        return DaskTaskRunner(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1, "processes": True})
    raise ValueError(f"MASKMOTION_TASK_RUNNER must be 'threads' or 'dask', got '{kind}'")


def stage_config(cls: type[ConfigT], section: str, params_path: str = str(DEFAULT_PARAMS)) -> ConfigT:
    return load_stage_config(cls, section, params_path)


def publish_summary(key: str, title: str, data: dict) -> None:
    """A small markdown artifact in the Prefect UI with a stage's result (no-op value outside a run)."""
    body = f"# {title}\n\n```json\n{json.dumps(data, indent=2)[:4000]}\n```\n"
    create_markdown_artifact(key=key, markdown=body, description=title)
