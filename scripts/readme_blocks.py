"""Run the README's command blocks as written, in order, in a project folder (after `make demo` there).

    .venv/bin/python scripts/readme_blocks.py            # run them in this checkout
    .venv/bin/python scripts/readme_blocks.py --list     # say which run, and why the others do not

Every ```bash and ```python block runs, except one right under an HTML comment that starts
``<!-- not run by scripts/readme_blocks.py:`` and says what checks it instead (the SD1.4 steps, the
Prefect stack, `make demo` itself). A block fails the run on its first failing command. The end-to-end
test (tests/test_dvc_pipeline.py) runs this after the ci-profile DAG.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

SKIP = "<!-- not run by scripts/readme_blocks.py:"
FENCE = re.compile(r"^```(\w*)\s*$")


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    skipped: str | None  # why it is not run, or None


def readme_blocks(readme: Path) -> list[Block]:
    """The fenced blocks of ``readme`` with their language and, when a skip comment precedes one, its reason."""
    lines = readme.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = lines[i - 1].strip() if i > 0 else ""
        skipped = before[len(SKIP) :].removesuffix("-->").strip() if before.startswith(SKIP) else None
        blocks.append(Block(i + 1, opening.group(1), "\n".join(lines[i + 1 : end]) + "\n", skipped))
        i = end + 1
    return blocks


def run_block(block: Block, project: Path) -> subprocess.CompletedProcess:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HF_HUB_OFFLINE": "1"}
    command = ["bash", "-e", "-o", "pipefail", "-c", block.code] if block.language == "bash" else None
    if block.language == "python":
        command = [sys.executable, "-c", block.code]
    return subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, timeout=1800)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", type=Path, default=Path("."), help="where to run them (default: here)")
    parser.add_argument("--list", action="store_true", help="only say which blocks run")
    args = parser.parse_args(argv)
    for block in readme_blocks(args.project / "README.md"):
        if block.language not in ("bash", "python"):
            continue
        where = f"README.md:{block.line} ({block.language})"
        if block.skipped is not None:
            print(f"{where}: not run: {block.skipped}")
            continue
        if args.list:
            print(f"{where}: runs")
            continue
        done = run_block(block, args.project)
        if done.returncode != 0:
            print(f"{where}: failed ({done.returncode}):\n{block.code}{done.stdout[-3000:]}{done.stderr[-3000:]}")
            return 1
        print(f"{where}: ran")
    return 0


if __name__ == "__main__":
    sys.exit(main())
