"""Studios for the tests: one without a checkpoint (fast: checks, uploads, specs), one on the tiny world."""

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


def write_params(path: Path, generate: dict | None = None, masks: dict | None = None) -> Path:
    path.write_text(yaml.safe_dump({"generate": generate or {}, "masks": masks or {}, "evaluate": {}}))
    return path


@pytest.fixture
def bare_studio(tmp_path):
    """A studio whose checkpoint folder is empty: everything but generation works."""
    from studio.app import create_app
    from studio.settings import Settings

    settings = Settings(
        data_dir=tmp_path / "studio",
        params=write_params(tmp_path / "params.yaml", {"checkpoint_dir": str(tmp_path / "no-checkpoints")}),
        clips_dir=tmp_path / "clips",
        max_upload_mb=0.05,
    )
    return create_app(settings)


@pytest.fixture
def client(bare_studio):
    from fastapi.testclient import TestClient

    return TestClient(bare_studio)


def files_under(folder: Path) -> list[str]:
    """Everything the studio wrote, but the .gitignore it writes when it starts."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name != ".gitignore")
