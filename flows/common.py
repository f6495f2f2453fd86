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


def stage_config(cls: type[ConfigT], section: str, params_path: str = str(DEFAULT_PARAMS)) -> ConfigT:
    return load_stage_config(cls, section, params_path)


def publish_summary(key: str, title: str, data: dict) -> None:
    """A small markdown artifact in the Prefect UI with a stage's result (no-op value outside a run)."""
    body = f"# {title}\n\n```json\n{json.dumps(data, indent=2)[:4000]}\n```\n"
    create_markdown_artifact(key=key, markdown=body, description=title)
