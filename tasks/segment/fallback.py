"""Classical foreground masks for when no SAM checkpoint is configured.

Two methods, picked by name in ``params.yaml`` (``masks.fallback``):

``median_background``
    The camera is assumed still. The background is the per-pixel median over the clip,
    re-estimated from the frames where the pixel is *not* foreground (so an object that sits
    still for half the clip does not leak into it). A pixel is foreground when its colour lies
    at least halfway from the background to the object's colour (a two-colour matting test),
    which puts the edge where the object covers half the pixel, as a mask drawn by hand would.
``grabcut``
    OpenCV GrabCut, frame by frame: frame 0 is seeded by the first-frame box when the manifest
    gives one, else by the ``median_background`` mask of frame 0; frame t+1 is seeded by the
    mask of frame t (probable foreground inside it, probable background in its padded box,
    sure background outside). Much weaker than ``median_background`` on small toy frames.

Both return bool (F, H, W). Nothing here knows about files or SAM.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class FallbackSettings:
    """The knobs of the classical methods (copied from ``MasksConfig``)."""

    min_contrast: float = 25.0  # colour distance (0-441) below which a pixel is never foreground
    luma_weight: float = 16.0  # matting trusts luma this much more than chroma (sharper in video)
    background_passes: int = 2  # re-estimates of the background that exclude foreground pixels
    min_region_fraction: float = 0.2  # keep regions at least this fraction of the largest one
    grabcut_iterations: int = 5
    box_padding: float = 0.5  # grabcut: sure background starts this far out (fraction of box size)


# ---------------------------------------------------------------------------------------------
# shared helpers


def keep_main_regions(mask: np.ndarray, min_fraction: float) -> np.ndarray:
    """Drop connected regions smaller than ``min_fraction`` of the largest, then fill holes.

    The prompt names one subject, so specks of noise or a second, small moving thing are
    dropped; a subject cut in two by an occluder keeps both halves.
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros_like(mask, dtype=bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = 1 + np.flatnonzero(areas >= min_fraction * areas.max())
    kept = np.isin(labels, keep)
    return fill_holes(kept)


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background pockets not connected to the image border."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood[1:-1, 1:-1] == 0
    return mask | holes


def padded_box(mask: np.ndarray, padding: float) -> tuple[int, int, int, int] | None:
    """Bounding box (x0, y0, x1, y1), inclusive-exclusive, grown by ``padding`` x its size, clipped."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    h, w = mask.shape
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    px, py = padding * (x1 - x0), padding * (y1 - y0)
    return (max(0, int(x0 - px)), max(0, int(y0 - py)), min(w, int(np.ceil(x1 + px))), min(h, int(np.ceil(y1 + py))))


# ---------------------------------------------------------------------------------------------
# median background


def exclusion_zone(mask: np.ndarray) -> np.ndarray:
    """Pixels to leave out of the next background estimate: each region's convex hull, grown by 1.

    Where a slow object polluted the median, the first rough mask is only a ring (the object's
    middle looks like the polluted "background"), often open on one side; its hull covers the
    middle, and growing it keeps the anti-aliased rim out too.
    """
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    zone = np.zeros(mask.shape, np.uint8)
    for c in contours:
        cv2.fillPoly(zone, [cv2.convexHull(c)], 1)
    return cv2.dilate(zone, np.ones((3, 3), np.uint8)) > 0


def estimate_background(frames: np.ndarray, foreground: np.ndarray | None = None, min_seen: int = 2) -> np.ndarray:
    """Per-pixel median colour, float32 (H, W, 3) RGB, over the frames where the pixel is background.

    ``frames``: uint8 (F, H, W, 3). ``foreground``: bool (F, H, W) or None. A pixel seen as
    background in fewer than ``min_seen`` frames (an object that never quite leaves it) is
    painted in from its neighbours, since its own history only shows the object.
    """
    stack = frames.astype(np.float32)
    if foreground is None:
        return np.median(stack, axis=0)
    masked = np.where(foreground[..., None], np.nan, stack)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels are painted in below
        clean = np.nanmedian(masked, axis=0)
    unseen = (~foreground).sum(0) < min_seen
    if not unseen.any():
        return clean
    if unseen.all():
        return np.median(stack, axis=0)
    filled = cv2.inpaint(
        np.nan_to_num(clean).clip(0, 255).astype(np.uint8), unseen.astype(np.uint8), 3, cv2.INPAINT_TELEA
    )
    return np.where(unseen[..., None], filled.astype(np.float32), clean)


def colour_distance(frames: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Euclidean RGB distance of each pixel from the background, float32 (F, H, W) in [0, 441]."""
    return np.linalg.norm(frames.astype(np.float32) - background[None], axis=-1)


def object_coloured(frames: np.ndarray, rough: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Pixels near the found object that have the object's colour, bool (F, H, W).

    Where an object covers a pixel in most frames (it jumps on the spot), the median there is
    the object itself and the distance test misses it. Its colour gives it away: samples closer
    to the object's median colour than half the object/background contrast are left out of the
    next background estimate. Only near where the object was seen, so a background that happens
    to share its colour elsewhere keeps its own history.
    """
    if not rough.any():
        return np.zeros_like(rough)
    core = np.stack([cv2.erode(m.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0 for m in rough])
    obj = np.median(frames[core if core.any() else rough].astype(np.float32), axis=0)
    contrast = np.median(np.linalg.norm(background[rough.any(0)] - obj, axis=-1))
    size = max(3, int(np.sqrt(rough.sum((1, 2)).max())))  # about the object's diameter
    near = cv2.dilate(rough.any(0).astype(np.uint8), np.ones((size, size), np.uint8)) > 0
    return (np.linalg.norm(frames.astype(np.float32) - obj, axis=-1) < contrast / 2) & near[None]


def motion_masks(frames: np.ndarray, settings: FallbackSettings = FallbackSettings()) -> np.ndarray:
    """Rough moving-foreground masks, bool (F, H, W) (see :func:`separate_background`)."""
    return separate_background(frames, settings)[0]


def separate_background(frames: np.ndarray, settings: FallbackSettings) -> tuple[np.ndarray, np.ndarray]:
    """Rough foreground bool (F, H, W) and background float32 (H, W, 3) of a still-camera clip.

    Foreground is where a pixel is far from the background colour.

    The threshold is Otsu's over the clip's distances, never below ``min_contrast``; the
    background is re-estimated ``background_passes`` times without the pixels found so far
    (their hulls, and object-coloured pixels near them). Also the cue the SAM path uses to
    choose among automatic candidates.
    """
    foreground = None
    for _ in range(1 + settings.background_passes):
        background = estimate_background(frames, foreground)
        rough = _threshold_distance(colour_distance(frames, background), settings)
        foreground = np.stack([exclusion_zone(m) for m in rough]) | object_coloured(frames, rough, background)
    return rough, estimate_background(frames, foreground)


def _threshold_distance(dist: np.ndarray, settings: FallbackSettings) -> np.ndarray:
    scaled = np.clip(dist, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(scaled.reshape(-1, 1), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    rough = dist > max(float(otsu), settings.min_contrast)
    return np.stack([keep_main_regions(m, settings.min_region_fraction) for m in rough])


def to_luma_chroma(rgb: np.ndarray) -> np.ndarray:
    """RGB float (..., 3) in [0, 255] -> (Y, Cr, Cb) float32 (..., 3), the video codec's own axes."""
    m = np.array([[0.299, 0.587, 0.114], [0.5, -0.4187, -0.0813], [-0.1687, -0.3313, 0.5]], np.float32)
    return rgb.astype(np.float32) @ m.T


def matte_frame(
    frame: np.ndarray, background: np.ndarray, rough: np.ndarray, settings: FallbackSettings
) -> np.ndarray:
    """Foreground where a pixel is at least halfway from the background colour to the object colour.

    ``frame`` uint8 (H, W, 3); ``background`` float32 (H, W, 3) RGB; ``rough`` bool (H, W) from
    :func:`motion_masks`. The object colour is the median over the rough mask's eroded core
    (its rim mixes in background). The test runs in luma/chroma with luma weighted up: H.264
    stores chroma at half resolution, so colour edges are blurred over 2 pixels while luma
    edges are sharp. Returns bool (H, W).
    """
    if not rough.any():
        return rough.copy()
    core = cv2.erode(rough.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    pixels = frame[core] if core.sum() >= 4 else frame[rough]
    obj = to_luma_chroma(np.median(pixels.astype(np.float32), axis=0))
    pix, bg = to_luma_chroma(frame), to_luma_chroma(background)
    weight = np.array([settings.luma_weight, 1.0, 1.0], np.float32)
    # project each pixel on the line from its own background colour to the object colour
    towards = obj[None, None] - bg
    norm2 = np.maximum((weight * towards**2).sum(-1), 1e-6)
    alpha = (weight * (pix - bg) * towards).sum(-1) / norm2
    far_enough = np.linalg.norm(frame.astype(np.float32) - background, axis=-1) > settings.min_contrast / 2
    # far from the rough mask a pixel is background whatever its colour (a shadow, a ripple)
    near = cv2.dilate(rough.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    return (alpha >= 0.5) & far_enough & near


def median_background_masks(
    frames: np.ndarray, settings: FallbackSettings = FallbackSettings(), box=None, on_frame=None
) -> np.ndarray:
    """Masks bool (F, H, W) for a still-camera clip, uint8 (F, H, W, 3). ``box`` is unused here."""
    rough, background = separate_background(frames, settings)
    out = []
    for frame, r in zip(frames, rough):
        out.append(keep_main_regions(matte_frame(frame, background, r, settings), settings.min_region_fraction))
        if on_frame:
            on_frame()
    return np.stack(out)


# ---------------------------------------------------------------------------------------------
# grabcut


def grabcut_frame(frame: np.ndarray, seed: np.ndarray, settings: FallbackSettings) -> np.ndarray:
    """One GrabCut run seeded by a bool mask (H, W); returns bool (H, W) (empty seed -> empty).

    The seed is only *probable* foreground and its padded box *probable* background: the object
    has moved since the seed was drawn, so nothing near it is certain. Outside the box is sure
    background. Where GrabCut cannot build both colour models the seed is returned.
    """
    box = padded_box(seed, settings.box_padding)
    if box is None:
        return np.zeros_like(seed, dtype=bool)
    x0, y0, x1, y1 = box
    labels = np.full(seed.shape, cv2.GC_BGD, np.uint8)
    labels[y0:y1, x0:x1] = cv2.GC_PR_BGD
    labels[seed] = cv2.GC_PR_FGD
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    bgr = cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR)
    try:
        cv2.grabCut(bgr, labels, None, bgd, fgd, settings.grabcut_iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return seed.copy()  # e.g. a seed box that fills the frame leaves no background samples
    mask = (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    return keep_main_regions(mask, settings.min_region_fraction)


def grabcut_masks(
    frames: np.ndarray, settings: FallbackSettings = FallbackSettings(), box=None, on_frame=None
) -> np.ndarray:
    """GrabCut per frame, each seeded by the previous frame's mask. ``box``: (x0, y0, x1, y1) or None."""
    h, w = frames.shape[1:3]
    if box is not None:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        seed = np.zeros((h, w), bool)
        seed[max(0, y0) : min(h, y1), max(0, x0) : min(w, x1)] = True
    else:
        seed = median_background_masks(frames, settings)[0]
    out = []
    for frame in frames:
        mask = grabcut_frame(frame, seed, settings)
        out.append(mask)
        seed = mask if mask.any() else seed  # a lost frame does not erase the seed
        if on_frame:
            on_frame()
    return np.stack(out)


FallbackMethod = Callable[..., np.ndarray]

FALLBACKS: dict[str, FallbackMethod] = {
    "median_background": median_background_masks,
    "grabcut": grabcut_masks,
}
