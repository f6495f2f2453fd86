"""What every stage flow shares: reading its params section, and a markdown summary artifact."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from prefect import flow, tags, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.runtime import flow_run
from prefect.tasks import exponential_backoff

from tasks.common.params import DEFAULT_PARAMS, ConfigT, load_stage_config

# Set by the pipeline flow for the `dvc repro` it runs, so every stage run carries the pipeline's tag.
PIPELINE_TAG_ENV = "MASKMOTION_PIPELINE_TAG"


def run_stage(stage_flow: Callable, switches: dict[str, str] | None = None, argv: list[str] | None = None):
    """Entry point of ``python -m flows.<stage>``: run the flow, tagged with the pipeline run if any.

    ``switches`` name the flow's on/off parameters and their help (``{"decoder_only": ...}`` is
    ``--decoder-only``). The command line is parsed first: ``--help`` prints the flow's docstring and
    exits, and any other argument is an error, so a mistyped or unknown flag never starts a stage that
    can run for an hour."""
    parser = argparse.ArgumentParser(prog=f"python -m flows.{stage_flow.name}", description=stage_flow.description)
    for name, text in (switches or {}).items():
        parser.add_argument("--" + name.replace("_", "-"), action="store_true", help=text)
    kwargs = vars(parser.parse_args(sys.argv[1:] if argv is None else argv))
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


def run_summarised(stage_task: Callable, cls: type[ConfigT], section: str, params_path: str, key: str, title: str):
    """A stage flow's body: the stage's task on its params section, its result published as a summary."""
    result = stage_task(stage_config(cls, section, params_path))
    publish_summary(key, title, result)
    return result


def table_flow(section: str, cls: type[ConfigT], run: Callable, description: str):
    """The flow of a comparison (ablations, compare): ``run(config, params_path)`` on its params section
    as one task, its table returned as rows and published as a table artifact."""
    run_task = task(run, name=f"run-{section}")

    def table(params_path: str = "params.yaml") -> list[dict]:
        rows = run_task(stage_config(cls, section, params_path), params_path).to_dict(orient="records")
        create_table_artifact(key=section, table=rows, description=description)
        return rows

    table.__name__ = table.__qualname__ = f"{section}_flow"
    return flow(name=section, log_prints=True)(table)


# ---------------------------------------------------------------------------------------------
# retries: transient errors only


# Bad input (tasks.common.io.BadInput and tasks.common.params.ConfigError are ValueErrors), missing files and
# timeouts fail at once: running them again gives the same answer, later.
NEVER_RETRY = (
    ValueError,
    TypeError,
    KeyError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    PermissionError,
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """An error a second try may not meet: I/O on a shared file system or a dropped connection
    (``OSError``), or a GPU whose memory another process held (``torch.OutOfMemoryError``)."""
    if isinstance(exc, NEVER_RETRY):
        return False
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, OSError)


def retry_if_transient(task, task_run, state) -> bool:
    """A Prefect ``retry_condition_fn``: retry a failed task run only when its error is transient."""
    exc = state.result(raise_on_failure=False)
    return isinstance(exc, BaseException) and is_transient(exc)


def transient_retries(retries: int = 2, first_delay_s: float = 10.0) -> dict:
    """Task options: up to ``retries`` more tries on transient errors, waiting 10 s, 20 s, ... (+-50%)."""
    return dict(
        retries=retries,
        retry_delay_seconds=exponential_backoff(backoff_factor=first_delay_s),
        retry_jitter_factor=0.5,
        retry_condition_fn=retry_if_transient,
    )


class _OncePerFlowRun(logging.Filter):
    """Lets the first record per flow run whose message starts with ``prefix`` through, drops repeats."""

    def __init__(self, prefix: str):
        super().__init__()
        self.prefix, self.said = prefix, set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith(self.prefix):
            return True
        run = str(getattr(record, "flow_run_id", None))
        first = run not in self.said
        self.said.add(run)
        return first


# Prefect warns on every task run with a timeout that runs on a worker thread (mapped videos do): the
# timeout then lands between Python steps. Said once per run is enough.
WORKER_THREAD_TIMEOUT_WARNING = _OncePerFlowRun("Timeout of %s seconds configured for this task, but the task is")
logging.getLogger("prefect.task_runs").addFilter(WORKER_THREAD_TIMEOUT_WARNING)


def timeout_from_env(name: str, default_s: float) -> float | None:
    """A task timeout in seconds from ``$name`` (``0`` turns it off); read when the flow module loads."""
    value = float(os.environ.get(name, default_s))
    return value if value > 0 else None


def run_label(now: datetime | None = None) -> str:
    """A folder name for one run: UTC time, then the flow run's name (``20261125T030000Z-crimson-fox``)."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    name = flow_run.get_name()
    return f"{stamp}-{name}" if name else stamp
