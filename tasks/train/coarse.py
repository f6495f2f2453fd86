"""Training masks made coarse, as a person draws them: the object is somewhere in here.

The few-shot clips come with exact silhouettes (SAM's cut-outs), so a mask branch trained on them
alone learns "the object is exactly this shape": given a drawn mask (one rigid blob moved along a
path) it draws the blob. Seeing coarse masks some of the time teaches it to put the object, and the
motion it learned, inside whatever region it is given. Each kind works on one window of masks
bool (W, H, W):

- ``dilate``: every frame grown by 1-4 pixels;
- ``hull``: every frame's convex hull;
- ``ellipse``: every frame's moment-fitted ellipse, 1.25x as wide and tall (it covers the object);
- ``box``: every frame's bounding box, grown by 1-2 pixels;
- ``rigid``: one coarse mask for the whole window (frame 1's ellipse, box or dilated silhouette)
  moved to each frame's centroid: a drawn mask carried along a path, which shows nothing of a turn
  or a squash.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

KINDS = ("dilate", "hull", "ellipse", "box", "rigid")


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), disc) > 0


def _hull(mask: np.ndarray) -> np.ndarray:
    points = cv2.findNonZero(mask.astype(np.uint8))
    out = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(out, cv2.convexHull(points), 1)
    return out > 0


def _ellipse(mask: np.ndarray, grow: float = 1.25) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    cov = np.cov(np.stack([xs, ys])) + np.eye(2) * 1e-3
    values, vectors = np.linalg.eigh(cov)
    axes = grow * 2 * np.sqrt(values)  # 2 sigma: an ellipse of the same second moments as the region
    angle = float(np.degrees(np.arctan2(vectors[1, 1], vectors[0, 1])))
    out = np.zeros(mask.shape, np.uint8)
    centre = (round(float(xs.mean())), round(float(ys.mean())))
    cv2.ellipse(out, centre, (max(1, round(axes[1])), max(1, round(axes[0]))), angle, 0, 360, 1, -1)
    return (out > 0) | mask


def _box(mask: np.ndarray, px: int) -> np.ndarray:
    ys, xs = np.nonzero(mask)
    out = np.zeros_like(mask, dtype=bool)
    h, w = mask.shape
    out[max(ys.min() - px, 0) : min(ys.max() + px + 1, h), max(xs.min() - px, 0) : min(xs.max() + px + 1, w)] = True
    return out


def _rigid(window: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Frame 1's coarse mask, cut to its box, pasted at every frame's centroid (clipped at the border)."""
    first = window[0]
    style = rng.integers(3)
    sprite = _ellipse(first) if style == 0 else _box(first, 1) if style == 1 else _dilate(first, 2)
    ys, xs = np.nonzero(sprite)
    sprite = sprite[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    sh, sw = sprite.shape
    out = np.zeros_like(window, dtype=bool)
    h, w = window.shape[1:]
    for t, mask in enumerate(window):
        if not mask.any():
            continue
        my, mx = np.nonzero(mask)
        y0, x0 = round(float(my.mean()) - sh / 2), round(float(mx.mean()) - sw / 2)
        ys_, xs_ = slice(max(y0, 0), min(y0 + sh, h)), slice(max(x0, 0), min(x0 + sw, w))
        if ys_.start < ys_.stop and xs_.start < xs_.stop:
            out[t, ys_, xs_] = sprite[ys_.start - y0 : ys_.stop - y0, xs_.start - x0 : xs_.stop - x0]
    return out


def coarsen(window: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """One window of masks bool (W, H, W) made coarse by ``kind`` (one of ``KINDS``); empty frames stay empty."""
    if kind == "rigid":
        return _rigid(window, rng) if window[0].any() else window.copy()
    out = window.copy()
    for t, mask in enumerate(window):
        if not mask.any():
            continue
        if kind == "dilate":
            out[t] = _dilate(mask, int(rng.integers(1, 5)))
        elif kind == "hull":
            out[t] = _hull(mask)
        elif kind == "ellipse":
            out[t] = _ellipse(mask)
        elif kind == "box":
            out[t] = _box(mask, int(rng.integers(1, 3)))
        else:
            raise ValueError(f"unknown coarse mask kind '{kind}', expected one of {KINDS}")
    return out


def maybe_coarsen(window: np.ndarray, probability: float, kinds: list[str], rng: np.random.Generator) -> np.ndarray:
    """``window`` made coarse by a kind drawn from ``kinds`` with ``probability``, else as it is.
    Give it a generator of its own: the run's other random draws then stay what they were without it."""
    u, pick = rng.random(), int(rng.integers(len(kinds))) if kinds else 0
    if probability <= 0 or u >= probability:
        return window
    return coarsen(window, kinds[pick], rng)


class CoarseMasks:
    """Windows of masks made coarse with ``probability`` (``tasks.train.coarse``), from a generator of
    its own: the run's other draws stay what they are without it."""

    def __init__(self, probability: float, kinds: list[str], seed: int):
        self.probability, self.kinds = probability, list(kinds)
        self.rng = np.random.default_rng([seed, 17])

    def __call__(self, window: torch.Tensor) -> torch.Tensor:
        exact = window.numpy() > 0.5
        coarse = maybe_coarsen(exact, self.probability, self.kinds, self.rng)
        return window if coarse is exact else torch.from_numpy(coarse).to(window.dtype)
