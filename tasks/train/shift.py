"""Training windows moved to another place in the frame, the masks with them.

Few-shot clips show each motion along one path each. Trained on them as recorded, the video model can
tie what happens inside the object (a turn, a squash) to where the clip showed it, and then not do it
on a path nobody trained on (bench/learned_motion: a turn learnt on the clips' own paths, none under a
drawn mask elsewhere). Moving each training window by a random whole number of latent cells, the frames'
latents and the masks together, shows the same motion in other places. The move keeps the window's
object in frame (its masks never wrap round an edge); the ground wraps, which a textured ground hides.
"""

from __future__ import annotations

import numpy as np
import torch


class RandomShift:
    """Moves of up to ``max_cells`` latent cells each way, drawn from a generator of its own (the run's
    other draws stay what they are without it)."""

    def __init__(self, max_cells: int, seed: int):
        self.max_cells = max_cells
        self.rng = np.random.default_rng([seed, 23])

    def draw(self, masks: torch.Tensor, latent_width: int) -> tuple[int, int]:
        """(dy, dx) in latent cells for a window whose masks are ``masks`` (W, H, W'): within
        ``max_cells``, and within the cells left free above, below, left and right of the window's object."""
        scale = masks.shape[-1] // latent_width
        ys, xs = torch.nonzero(masks.any(0), as_tuple=True)
        if len(ys) == 0:
            return 0, 0
        k = self.max_cells
        up, down = int(ys.min()) // scale, (masks.shape[-2] - 1 - int(ys.max())) // scale
        left, right = int(xs.min()) // scale, (masks.shape[-1] - 1 - int(xs.max())) // scale
        dy = int(self.rng.integers(-min(up, k), min(down, k) + 1))
        dx = int(self.rng.integers(-min(left, k), min(right, k) + 1))
        return dy, dx


def shifted(t: torch.Tensor, dy: int, dx: int, scale: int = 1) -> torch.Tensor:
    """``t`` (..., H, W) rolled by (dy, dx) x ``scale`` pixels."""
    return t.roll((dy * scale, dx * scale), dims=(-2, -1)) if dy or dx else t
