"""Helpers for end-to-end tests that run the real commands on a copy of this working tree."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the venv running the tests also has dvc, prefect and python

# `python -c QUERY_STAGE_RUNS <tag>` prints {flow name: state} of the flow runs carrying the tag
QUERY_STAGE_RUNS = """
import asyncio, json, sys
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags

async def main(tag):
    async with get_client() as client:
        runs = await client.read_flow_runs(flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[tag])))
        names = {}
        for r in runs:
            flow = await client.read_flow(r.flow_id)
            names[flow.name] = r.state.type.value
        print(json.dumps(names))

asyncio.run(main(sys.argv[1]))
"""


def env_for(project: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DVC_NO_ANALYTICS": "1",
        "PREFECT_HOME": str(project / ".prefect"),
        **extra,
    }


def run(cmd: list[str], cwd: Path, timeout: float = 900, **extra_env: str) -> str:
    done = subprocess.run(cmd, cwd=cwd, env=env_for(cwd, **extra_env), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(cmd)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def copy_working_tree(dest: Path) -> Path:
    """Tracked + untracked-but-not-ignored files, committed into a new git repo at ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    for cmd in (
        ["git", "init", "-q"],
        ["git", "add", "-A"],
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "snapshot"],
    ):
        subprocess.run(cmd, cwd=dest, check=True)
    return dest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
