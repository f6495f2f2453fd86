"""Fixtures that build small datasets on disk, the way a user would lay them out."""

from pathlib import Path

import numpy as np
import pytest
import yaml

from tasks.common.io import write_mask_pngs
from tasks.common.toy import Scene, render_video
from tasks.common.video import write_mp4
from tasks.ingest.stage import IngestConfig


def toy_video(seed: int, size: int = 32, n_frames: int = 12):
    scene = Scene("red", "star", "sand", "run", radius=size * 0.15, params=(0.0, 1.0, 2.0, 0.2))
    return render_video(scene, size, n_frames, np.random.default_rng(seed))


class Dataset:
    """A data root with one dataset folder; add videos, then write the manifest."""

    def __init__(self, root: Path):
        self.root = root / "data"
        self.dir = self.root / "raw" / "ds"
        self.dir.mkdir(parents=True)
        self.rows: list[dict] = []

    def add(self, vid: str, frames=None, truth=None, fps=8.0, **row) -> Path:
        if frames is None:
            frames, truth = toy_video(len(self.rows))
        path = self.dir / f"{vid}.mp4"
        write_mp4(path, frames, fps)
        entry = {"id": vid, "video": f"{vid}.mp4", "prompt": "a red star runs across a sandy plain"}
        if truth is not None:
            write_mask_pngs(truth, self.dir / "truth" / vid)
            entry["truth_masks"] = f"truth/{vid}"
        entry.update(row)
        self.rows.append(entry)
        return path

    def add_file(self, vid: str, name: str, content: bytes, **row) -> Path:
        path = self.dir / name
        path.write_bytes(content)
        self.rows.append({"id": vid, "video": name, "prompt": "a red star", **row})
        return path

    def config(self, **overrides) -> IngestConfig:
        manifest = self.dir / "manifest.yaml"
        manifest.write_text(yaml.safe_dump({"videos": self.rows}, sort_keys=False))
        base = dict(
            manifest=str(manifest),
            input_dir=str(self.dir),
            data_root=str(self.root),
            out_dir=str(self.root / "clips"),
            n_frames=8,
            height=32,
            width=32,
        )
        return IngestConfig(**{**base, **overrides})


@pytest.fixture
def dataset(tmp_path) -> Dataset:
    return Dataset(tmp_path)
