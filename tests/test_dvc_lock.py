"""Two `dvc repro` at once in one checkout: DVC's lock refuses the second, the first finishes whole.

This is what keeps `pipeline/default` runs (and a person's `dvc repro`) from writing over each other in
one checkout. A tiny DVC project in a temp folder, one stage that takes a few seconds.
"""

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.project_copy import BIN, env_for

STAGE = """\
stages:
  slow:
    cmd: python slow.py
    deps:
      - slow.py
    outs:
      - out.txt
"""
SLOW = """\
import pathlib, time
pathlib.Path("started").touch()
time.sleep(6)
pathlib.Path("out.txt").write_text("whole")
"""


def dvc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "dvc"), *args], cwd=cwd, env=env_for(cwd), capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_a_second_repro_is_refused_by_the_lock_and_nothing_is_corrupted(tmp_path):
    for cmd in (["git", "init", "-q"], [str(BIN / "dvc"), "init", "-q"]):
        subprocess.run(cmd, cwd=tmp_path, env=env_for(tmp_path), check=True, timeout=60)
    (tmp_path / "dvc.yaml").write_text(STAGE)
    (tmp_path / "slow.py").write_text(SLOW)
    env = {**env_for(tmp_path), "PATH": f"{Path(sys.executable).parent}:{env_for(tmp_path)['PATH']}"}
    first = subprocess.Popen(
        [str(BIN / "dvc"), "repro"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        end = time.monotonic() + 60
        while not (tmp_path / "started").exists():  # the first holds the lock while its stage runs
            assert first.poll() is None and time.monotonic() < end, (
                first.stdout.read() if first.poll() is not None else "no start"
            )
            time.sleep(0.2)
        second = dvc("repro", cwd=tmp_path)
        first_out, _ = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    message = second.stdout + second.stderr
    print(f"\nsecond `dvc repro`: exit {second.returncode}: {message.strip()}")
    # DVC 3.67 refuses it by the stage's read/write lock (.dvc/tmp/rwlock), naming the process holding it
    # (or, in another phase of the first run, by the repository lock: "Unable to acquire lock")
    assert second.returncode != 0, message
    assert f"(PID {first.pid})" in message or "Unable to acquire lock" in message, message
    assert first.returncode == 0, first_out
    assert (tmp_path / "out.txt").read_text() == "whole"
    status = dvc("status", cwd=tmp_path)
    assert status.returncode == 0 and "up to date" in status.stdout, status.stdout + status.stderr
    assert "out.txt" in (tmp_path / "dvc.lock").read_text()
