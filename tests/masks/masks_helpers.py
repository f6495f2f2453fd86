"""Helpers the masks tests import (a plain module: conftest.py is not importable by name)."""

from pathlib import Path

import numpy as np
import pandas as pd

from tasks.common.io import save_clip
from tasks.masks.stage import MasksConfig

MANIFEST_COLUMNS = [
    "id",
    "clip",
    "source_path",
    "fps",
    "orig_width",
    "orig_height",
    "n_source_frames",
    "frame_indices",
    "content_hash",
    "prompt",
    "mask_source",
    "has_truth",
    "box",
]


def moving_square(n_frames: int = 6, size: int = 32, side: int = 10, step: int = 2, seed: int = 0):
    """A red square moving right over a noisy green ground: frames uint8 (F, H, W, 3), masks bool (F, H, W)."""
    rng = np.random.default_rng(seed)
    ground = np.clip(np.array([70, 140, 55]) + rng.normal(0, 6, (size, size, 3)), 0, 255)
    frames, masks = [], []
    for t in range(n_frames):
        m = np.zeros((size, size), bool)
        y0, x0 = size // 2 - side // 2, 2 + step * t
        m[y0 : y0 + side, x0 : x0 + side] = True
        frames.append(np.where(m[..., None], [215, 35, 35], ground))
        masks.append(m)
    return np.stack(frames).astype(np.uint8), np.stack(masks)


class ClipsDir:
    """A clips folder laid out as the ingest stage writes it; add clips, then ``write()`` the manifest."""

    def __init__(self, root: Path):
        self.dir = root / "clips"
        self.dir.mkdir(parents=True)
        self.rows: list[dict] = []

    def add(
        self, vid: str, frames, user_masks=None, truth_masks=None, box: str = "", object_masks=None, **extra
    ) -> None:
        save_clip(
            self.dir / f"{vid}.npz", frames, user_masks=user_masks, truth_masks=truth_masks, object_masks=object_masks
        )
        self.rows.append(
            {
                "id": vid,
                "clip": f"{vid}.npz",
                "source_path": f"raw/{vid}.mp4",
                "fps": 8.0,
                "orig_width": frames.shape[2],
                "orig_height": frames.shape[1],
                "n_source_frames": len(frames),
                "frame_indices": " ".join(map(str, range(len(frames)))),
                "content_hash": "0" * 64,
                "prompt": "a red square runs across a grassy meadow",
                "mask_source": "user" if user_masks is not None or object_masks is not None else "none",
                "has_truth": truth_masks is not None,
                "box": box,
                **extra,
            }
        )

    def write(self) -> Path:
        pd.DataFrame(self.rows).to_csv(self.dir / "manifest.csv", index=False)
        return self.dir


def masks_config(clips_dir: Path, root: Path, **overrides) -> MasksConfig:
    """The stage config for a test: everything under ``root``, fallback unless overridden."""
    base = dict(clips_dir=str(clips_dir), out_dir=str(root / "masks"), metrics=str(root / "metrics" / "masks.json"))
    return MasksConfig(**{**base, **overrides})
