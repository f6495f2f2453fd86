"""Prefect flows: one module per stage, runnable as ``python -m flows.<stage>``.

Flows only wire tasks and carry config. The environment defaults below are set before Prefect is
imported anywhere, so a bare ``python -m flows.ingest`` keeps its state inside the project, sends
no telemetry, never waits on a model hub, and gives the ephemeral server time to start on a busy
2-core machine. Anything already set in the environment wins.
"""

import os
from pathlib import Path

_PROJECT = Path(__file__).resolve().parent.parent
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "PREFECT_HOME": str(_PROJECT / ".prefect"),
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    # OpenMP threads that spin while waiting made torch steps up to 8x slower on 2 shared cores
    "OMP_WAIT_POLICY": "PASSIVE",
}.items():
    os.environ.setdefault(_key, _value)
