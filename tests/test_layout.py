"""The house rules of the layout: stages meet only through files (tasks.contract), never by import."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STAGES = ("toyworld", "ingest", "masks", "base", "train", "generate", "evaluate")
# what any stage may import besides itself: shared helpers, the contract, the model
SHARED = ("tasks.common", "tasks.segment", "tasks.contract")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (lazy imports inside functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_every_stage_has_its_package():
    for stage in STAGES:
        assert (REPO / "tasks" / stage / "__init__.py").is_file(), f"tasks/{stage}/ is not a package"


@pytest.mark.parametrize("stage", STAGES)
def test_no_stage_imports_another_stage(stage):
    offending = []
    for path in sorted((REPO / "tasks" / stage).rglob("*.py")):
        for module in imported_modules(path):
            parts = module.split(".")
            if parts[0] == "tasks" and len(parts) > 1 and parts[1] in STAGES and parts[1] != stage:
                offending.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offending, "stages meet through tasks.contract, not by import:\n" + "\n".join(offending)


def test_shared_modules_import_no_stage():
    offending = []
    for root in ("common", "segment", "contract.py"):
        paths = [REPO / "tasks" / root] if root.endswith(".py") else sorted((REPO / "tasks" / root).rglob("*.py"))
        for path in paths:
            for module in imported_modules(path):
                parts = module.split(".")
                if parts[0] == "tasks" and len(parts) > 1 and parts[1] in STAGES:
                    offending.append(f"{path.relative_to(REPO)} imports {module}")
    assert not offending, "shared modules must not depend on a stage:\n" + "\n".join(offending)


def test_model_knows_no_pipeline():
    """model/ is pure torch/diffusers: no Prefect, DVC, or the tasks layer."""
    for path in sorted((REPO / "model").rglob("*.py")):
        bad = {m for m in imported_modules(path) if m.split(".")[0] in ("prefect", "dvc", "tasks", "flows")}
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}"


def test_ruff_is_clean():
    """The linter and the formatter configured in pyproject.toml find nothing to change."""
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    for args in (["check", "."], ["format", "--check", "."]):
        done = subprocess.run([ruff, *args], cwd=REPO, capture_output=True, text=True)
        assert done.returncode == 0, f"ruff {' '.join(args)}:\n{done.stdout}{done.stderr}"
