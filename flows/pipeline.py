"""End to end: drive ``dvc repro`` so dvc.yaml stays the one DAG and DVC decides what is stale.

Each stage DVC runs is its own flow (``python -m flows.<stage>``); it reports to the same Prefect
server as this run (``PREFECT_API_URL`` is inherited) and is tagged ``pipeline:<this run's id>``,
so the UI groups a pipeline run's stage runs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.runtime import flow_run

from flows.common import PIPELINE_TAG_ENV

PROJECT = Path(__file__).resolve().parent.parent


@task(name="dvc-repro")
def dvc_repro(targets: list[str], force: bool, cwd: str) -> str:
    """Run ``dvc repro`` and stream its output into the run log. Bad input fails it: no retries."""
    logger = get_run_logger()
    cmd = [str(Path(sys.executable).parent / "dvc"), "repro", *(["--force"] if force else []), *targets]
    env = {
        **os.environ,
        PIPELINE_TAG_ENV: f"pipeline:{flow_run.get_id()}",
        # stages run `python -m flows.<stage>`: make it this environment's python
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    logger.info("running %s in %s", " ".join(cmd), cwd)
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.strip() and "it/s]" not in line and "video/s]" not in line:  # skip tqdm redraws
            logger.info(line.rstrip())
    if proc.wait() != 0:
        raise RuntimeError(f"dvc repro failed (exit {proc.returncode}):\n{''.join(lines[-40:])}")
    return "".join(lines)


@flow(name="pipeline", log_prints=True)
def pipeline_flow(targets: list[str] | None = None, force: bool = False, project_dir: str | None = None) -> str:
    """Bring the DAG (or ``targets``) up to date. ``project_dir`` defaults to this checkout."""
    return dvc_repro(targets or [], force, project_dir or str(PROJECT))


if __name__ == "__main__":
    pipeline_flow()
