"""Is a first frame like what the model was trained on? Said as a warning, never a refusal.

The toy model knows the toy world's palette (flat-coloured shapes on a few textured grounds); given a
photograph as its first frame it makes texture, and its IoU is 0, with nothing to say why. So the
first frame's colours are compared with the training clips' (``--clips-dir``, what train read): the
share of its pixels whose colour (quantised to 8 levels a channel) the clips have at all. A frame of
the clips scores 1.0; a real photo against the toy world, far less. The comparison is of colours only:
a first frame of the right world may still be drawn badly, and this is not a judgement of that.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from tasks.common.io import load_clip
from tasks.contract import read_clip_manifest

LEVELS = 8  # per channel: 512 colour cells
SEEN = 1e-4  # a colour cell the clips have: at least this share of their pixels
MIN_FAMILIAR = 0.6  # below this share of familiar pixels, the page warns


def colour_cells(pixels: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) RGB -> each pixel's colour cell, int (N,)."""
    q = pixels.reshape(-1, 3).astype(np.int64) * LEVELS // 256
    return (q[:, 0] * LEVELS + q[:, 1]) * LEVELS + q[:, 2]


def colour_share(pixels: np.ndarray) -> np.ndarray:
    """The share of pixels in each colour cell, float (LEVELS**3,)."""
    counts = np.bincount(colour_cells(pixels), minlength=LEVELS**3)
    return counts / max(1, counts.sum())


class Familiarity:
    """The training clips' colours, read once (lazily: the page may never set a first frame)."""

    def __init__(self, clips_dir: str | Path):
        self.clips_dir = Path(clips_dir)
        self._seen: np.ndarray | None = None
        self._read = False
        self._lock = threading.Lock()

    def seen(self) -> np.ndarray | None:
        """bool (LEVELS**3,): the colour cells of the clips' frames; None without ingested clips."""
        with self._lock:
            if not self._read:
                self._read = True
                try:
                    table = read_clip_manifest(self.clips_dir)
                    frames = [load_clip(self.clips_dir / c)["frames"] for c in table["clip"]]
                    self._seen = colour_share(np.concatenate([f.reshape(-1, 3) for f in frames])) >= SEEN
                except (FileNotFoundError, KeyError, ValueError):
                    self._seen = None
            return self._seen

    def familiar_share(self, image: np.ndarray) -> float | None:
        """The share of ``image``'s pixels (uint8 (H, W, 3)) in colours the clips have; None: no clips."""
        seen = self.seen()
        return None if seen is None else float(seen[colour_cells(image)].mean())

    def warning(self, image: np.ndarray) -> str | None:
        share = self.familiar_share(image)
        if share is None or share >= MIN_FAMILIAR:
            return None
        return (
            f"only {share:.0%} of the first frame's pixels have colours the training clips ({self.clips_dir}) have: "
            "this model was trained on another world; expect texture rather than this picture, and a low IoU"
        )
