"""The DVC pipeline on a copy of this working tree: repro, a no-op second repro, push, pull in a clone."""

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv running the tests also has dvc and python


def run(cmd: list[str], cwd: Path) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1",
           "PREFECT_HOME": str(cwd / ".prefect")}
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_working_tree(dest: Path) -> None:
    """Tracked + untracked-but-not-ignored files, as a fresh clone of this state would have them."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for cmd in (["git", "init", "-q"], ["git", "add", "-A"],
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "snapshot"]):
        subprocess.run(cmd, cwd=dest, check=True)


@pytest.mark.slow
def test_repro_is_idempotent_and_push_pull_restores_data(tmp_path):
    project, remote, clone = tmp_path / "project", tmp_path / "remote", tmp_path / "clone"
    project.mkdir()
    copy_working_tree(project)
    targets = ["toyworld", "ingest"]

    out = run(["dvc", "repro", *targets], project)
    assert "Running stage 'ingest'" in out
    again = run(["dvc", "repro", *targets], project)
    assert "Running stage" not in again and "didn't change, skipping" in again

    run(["dvc", "remote", "add", "-f", "-d", "--local", "test", str(remote)], project)
    run(["dvc", "push", *targets], project)
    run(["git", "add", "-A"], project)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "lock"], project)

    subprocess.run(["git", "clone", "-q", str(project), str(clone)], check=True)
    assert not (clone / "data" / "clips").exists()
    run(["dvc", "remote", "add", "-f", "-d", "--local", "test", str(remote)], clone)
    run(["dvc", "pull", *targets], clone)
    for folder in ("data/raw/toy", "data/clips"):
        assert tree_digest(clone / folder) == tree_digest(project / folder), folder
    status = run(["dvc", "status", *targets], clone)
    assert "up to date" in status
