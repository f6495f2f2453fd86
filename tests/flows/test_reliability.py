"""Retries only for transient errors, with backoff; timeouts from settings; run folder names."""

import errno
import logging
from datetime import UTC, datetime

import pytest
import torch
from prefect import flow, task

from flows.common import is_transient, run_label, timeout_from_env, transient_retries
from tasks.common.io import BadInput
from tasks.common.params import ConfigError


@pytest.mark.parametrize(
    "exc, transient",
    [
        (OSError(errno.EIO, "input/output error"), True),
        (ConnectionResetError("peer went away"), True),
        (torch.OutOfMemoryError("CUDA out of memory"), True),
        (ValueError("bad mask"), False),
        (BadInput("data/raw/x/manifest.yaml", "no prompt"), False),
        (ConfigError("invalid params"), False),
        (FileNotFoundError("no checkpoint"), False),
        (PermissionError("read-only"), False),
        (TimeoutError("task timed out"), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_what_counts_as_transient(exc, transient):
    assert is_transient(exc) is transient


def test_backoff_doubles():
    options = transient_retries(retries=3, first_delay_s=10)
    assert options["retries"] == 3 and options["retry_delay_seconds"](3) == [10, 20, 40]


def test_transient_errors_are_retried_bad_input_is_not(prefect_harness):
    calls = []

    def flaky(exc_type):
        calls.append(exc_type)
        if len(calls) < 3:
            raise exc_type("failure")
        return "done"

    options = {**transient_retries(retries=2), "retry_delay_seconds": 0}
    flaky_task = task(flaky, name="flaky", **options)

    @flow
    def run(exc_type):
        return flaky_task(exc_type)

    assert run(ConnectionResetError) == "done" and len(calls) == 3  # two retries, then it worked
    calls.clear()
    with pytest.raises(BadInput):
        run(lambda msg: BadInput("manifest.yaml", msg))
    assert len(calls) == 1  # bad input: no second try
    calls.clear()
    with pytest.raises(FileNotFoundError):
        run(FileNotFoundError)
    assert len(calls) == 1


def test_timeout_setting(monkeypatch):
    assert timeout_from_env("MASKMOTION_TEST_TIMEOUT_S", 1800) == 1800
    monkeypatch.setenv("MASKMOTION_TEST_TIMEOUT_S", "60")
    assert timeout_from_env("MASKMOTION_TEST_TIMEOUT_S", 1800) == 60
    monkeypatch.setenv("MASKMOTION_TEST_TIMEOUT_S", "0")
    assert timeout_from_env("MASKMOTION_TEST_TIMEOUT_S", 1800) is None


def test_run_label_outside_a_run_is_the_utc_time():
    assert run_label(datetime(2026, 11, 25, 3, 0, 5, tzinfo=UTC)) == "20261125T030005Z"


def test_worker_thread_timeout_warning_is_said_once(prefect_harness, caplog):
    """Prefect warns on each timed task run in a worker thread; a run of many videos says it once."""
    from prefect import flow, task
    from prefect.task_runners import ThreadPoolTaskRunner

    from flows.common import timeout_from_env

    @task(timeout_seconds=timeout_from_env("MASKMOTION_TEST_TIMEOUT_S", 60))
    def one(i: int) -> int:
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def many() -> list[int]:
        return [f.result() for f in one.map(range(4))]

    with caplog.at_level(logging.WARNING, logger="prefect.task_runs"):
        assert many() == [0, 1, 2, 3]
    said = [r for r in caplog.records if "running in a worker thread" in r.getMessage()]
    assert len(said) == 1, [r.getMessage()[:80] for r in said]
