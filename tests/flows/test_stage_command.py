"""``python -m flows.<stage>``: a stage's command line is parsed before anything runs."""

import pytest
from prefect import flow

from flows.common import run_stage

ran = []


@flow(name="demo-stage")
def demo_flow(params_path: str = "params.yaml", quick: bool = False) -> dict:
    """Demonstrates a stage: says what it would do."""
    ran.append(quick)
    return {"quick": quick}


def test_help_prints_the_flow_and_its_switches_and_runs_nothing(capsys):
    ran.clear()
    with pytest.raises(SystemExit) as done:
        run_stage(demo_flow, {"quick": "do less"}, ["--help"])
    out = capsys.readouterr().out
    assert done.value.code == 0 and ran == []
    assert "python -m flows.demo-stage" in out and "Demonstrates a stage" in out and "--quick" in out


def test_an_unknown_argument_is_an_error_and_runs_nothing(capsys):
    ran.clear()
    with pytest.raises(SystemExit) as done:
        run_stage(demo_flow, {"quick": "do less"}, ["--quik"])
    assert done.value.code == 2 and "--quik" in capsys.readouterr().err and ran == []


def test_a_switch_reaches_the_flow():
    ran.clear()
    assert run_stage(demo_flow, {"quick": "do less"}, ["--quick"]) == {"quick": True}
    assert run_stage(demo_flow, argv=[]) == {"quick": False} and ran == [True, False]
