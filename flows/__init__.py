"""Prefect flows: one module per stage, runnable as ``python -m flows.<stage>``.

Flows only wire tasks and carry config. Importing this package sets the environment defaults of every
maskmotion process, the one place they are written: before Prefect or torch is imported, so a bare
``python -m flows.ingest`` and the test suite get them. ``python -m flows`` prints them as shell
``export`` lines for the processes that are not ours (``dvc``, ``prefect server``, ``prefect worker``)::

    eval "$(python -m flows)"

Anything already set in the environment wins.
"""

import os
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent

DEFAULTS = {
    "HF_HUB_OFFLINE": "1",  # only local folders: a hub id fails in seconds instead of retrying for ~30 s
    "PREFECT_HOME": str(PROJECT / ".prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    # the ephemeral server's 20 s start-up limit is close on a busy 2-core machine
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # How long torch's idle OpenMP threads spin before they sleep (libgomp reads it once, when torch loads).
    # libgomp's default (300,000 spins) is fastest alone and several times slower beside another busy
    # process; sleeping at once (OMP_WAIT_POLICY=PASSIVE) is safe there and twice as slow alone; 1,000
    # stays close to the better of the two in both (bench/speed/omp_threads_results.md)
    "GOMP_SPINCOUNT": "1000",
}


def apply_defaults() -> None:
    for key, value in DEFAULTS.items():
        os.environ.setdefault(key, value)


apply_defaults()
