"""The DVC pipeline on a copy of this working tree: repro, a no-op second repro, push, pull in a clone."""

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.project_copy import copy_working_tree, run


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_repro_is_idempotent_and_push_pull_restores_data(tmp_path):
    project, remote, clone = tmp_path / "project", tmp_path / "remote", tmp_path / "clone"
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
