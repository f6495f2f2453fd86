"""Suite-wide settings: no hub, no telemetry, Prefect state in a temp folder, few threads."""

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # forced, not a default: no test may reach a hub

# the project's environment defaults, before torch loads OpenMP
import flows  # noqa: E402, F401

# isort: split
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def prefect_harness(tmp_path_factory):
    """A throwaway Prefect backend for tests that run flows (request it explicitly)."""
    os.environ["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A tiny toy world on disk (see tests/tiny_world.py): clips, masks, a base of tiny models."""
    from tests.tiny_world import build_tiny_world

    return build_tiny_world(tmp_path_factory.mktemp("tiny-world"))


@pytest.fixture(scope="session")
def tiny_run(tiny_world, tmp_path_factory):
    """A 4-step training run on the tiny world: its folder holds checkpoints/."""
    from tasks.train.stage import train
    from tests.tiny_world import tiny_train_config

    run = tmp_path_factory.mktemp("tiny-run")
    train(tiny_train_config(tiny_world, run, steps=4, checkpoint_every=4))
    return run
