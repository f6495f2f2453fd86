"""Quality figures of the toy base models, measured on pictures alone (no model in the loop).

A toy frame's object has one of six palette colours that stand apart from every ground, so the
object is found by colour: a pixel is object when it is nearer a palette colour than any ground
colour. Its shape is the template (circle, square, ...) that, fitted to the same area and centroid,
overlaps it best.
"""

from __future__ import annotations

import cv2
import numpy as np

from tasks.common.geometry import iou
from tasks.common.toy import COLOURS, SHAPES, render_object_mask

# Reference colours of each ground (base, light and dark texture; rock also its cracks), RGB.
GROUND_COLOURS = {
    "grass": [(70, 140, 55), (50, 115, 40), (95, 165, 75)],
    "sand": [(214, 188, 136), (195, 170, 118), (232, 206, 155)],
    "water": [(45, 95, 175), (35, 80, 155), (60, 115, 195)],
    "rock": [(128, 122, 115), (100, 95, 88), (155, 150, 142), (75, 70, 64), (60, 56, 50)],
}
GROUND_NAMES = list(GROUND_COLOURS)
GROUND_REFS = np.array([c for refs in GROUND_COLOURS.values() for c in refs], np.float32)
GROUND_REF_GROUND = np.concatenate([[i] * len(refs) for i, refs in enumerate(GROUND_COLOURS.values())])
COLOUR_NAMES = list(COLOURS)
# each object colour as lit by the renderer's top-to-bottom shade (x1.08 .. x0.92)
OBJECT_REFS = np.array(
    [np.clip(np.array(c) * s, 0, 255) for c in COLOURS.values() for s in (1.08, 1.0, 0.92)], np.float32
)
OBJECT_REF_COLOUR = np.repeat(np.arange(len(COLOURS)), 3)


def palette_labels(frame: np.ndarray) -> np.ndarray:
    """Per pixel: index into COLOUR_NAMES of the nearest object colour, or -1 where a ground colour
    is nearer. ``frame`` uint8 (H, W, 3) RGB; returns int (H, W)."""
    return _labels(frame)[0].reshape(frame.shape[:2])


def _labels(frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, flat: the ``palette_labels`` label, and the index into GROUND_NAMES of the
    nearest ground colour."""
    px = frame.reshape(-1, 1, 3).astype(np.float32)
    d_obj = np.linalg.norm(px - OBJECT_REFS[None], axis=-1)
    d_gnd = np.linalg.norm(px - GROUND_REFS[None], axis=-1)
    labels = np.where(d_obj.min(1) < d_gnd.min(1), OBJECT_REF_COLOUR[d_obj.argmin(1)], -1)
    return labels, GROUND_REF_GROUND[d_gnd.argmin(1)]


def object_pixels(frame: np.ndarray, min_pixels: int) -> np.ndarray:
    """bool (H, W): pixels of any object colour, in 4-connected regions of at least ``min_pixels``
    (the toy world's foreground, whatever the object's colour; stray pixels are dropped)."""
    mask = (palette_labels(frame) >= 0).astype(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    keep = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= min_pixels]
    return np.isin(labels, keep)


def colour_regions(labels: np.ndarray, colour: str, min_pixels: int) -> np.ndarray:
    """bool (H, W): pixels ``palette_labels`` gave ``colour``, in 4-connected regions of at least ``min_pixels``
    (an object found by its colour alone)."""
    mask = (labels == COLOUR_NAMES.index(colour)).astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=4)
    keep = [k for k in range(1, n) if stats[k, cv2.CC_STAT_AREA] >= min_pixels]
    return np.isin(lab, keep)


def colour_inside(labels: np.ndarray, mask: np.ndarray) -> str | None:
    """The most frequent object colour among the pixels of ``mask`` (``palette_labels``' ``labels``), or
    None where only ground shows there: what colour a frame shows in an object's place."""
    inside = labels[mask]
    inside = inside[inside >= 0]
    return COLOUR_NAMES[np.bincount(inside).argmax()] if len(inside) else None


def detect_ground(frame: np.ndarray) -> str | None:
    """The ground whose colours are nearest to most of the frame's non-object pixels (None when the
    object covers the whole frame)."""
    labels, nearest = _labels(frame)
    background = labels < 0
    if not background.any():
        return None
    return GROUND_NAMES[int(np.bincount(nearest[background], minlength=len(GROUND_NAMES)).argmax())]


def largest_component(mask: np.ndarray) -> np.ndarray:
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if n <= 1:
        return np.zeros_like(mask, bool)
    return lab == 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())


def detect_object(frame: np.ndarray) -> tuple[str | None, np.ndarray]:
    """(colour name or None, bool (H, W) mask of the object): the most frequent palette colour, and
    the largest connected region of it (stray pixels of other colours are ignored)."""
    labels = palette_labels(frame)
    counts = np.bincount(labels[labels >= 0], minlength=len(COLOURS))
    if counts.sum() < 4:
        return None, np.zeros(frame.shape[:2], bool)
    best = int(counts.argmax())
    return COLOUR_NAMES[best], largest_component(labels == best)


def shape_template(
    shape: str, area: float, centroid: np.ndarray, size: int, angle: float = 0.0, aspect: float = 1.0
) -> np.ndarray:
    """bool (size, size): ``shape`` in the pose, with ``area`` pixels, its centroid at ``centroid`` (x, y)."""
    unit = render_object_mask(shape, size / 2, size / 2, 10.0, size, angle, aspect)
    r = 10.0 * np.sqrt(area / max(unit.sum(), 1e-6))
    t = render_object_mask(shape, size / 2, size / 2, r, size, angle, aspect)
    ys, xs = np.nonzero(t > 0.5)
    if len(xs) == 0:
        return t > 0.5
    shift = centroid - np.array([xs.mean(), ys.mean()])
    return render_object_mask(shape, size / 2 + shift[0], size / 2 + shift[1], r, size, angle, aspect) > 0.5


# Each shape's turn symmetry (radians): turns beyond it repeat the shape
SYMMETRY = {
    "circle": 2 * np.pi,
    "square": np.pi / 2,
    "triangle": 2 * np.pi / 3,
    "star": 2 * np.pi / 5,
    "diamond": np.pi,
}
ANGLE_STEP = np.deg2rad(7.5)
ASPECTS = (0.6, 0.72, 0.85, 1.18, 1.38, 1.6)


def shape_poses(shape: str) -> list[tuple[float, float]]:
    """(angle, aspect) templates for a shape in any pose: turned across its symmetry (upright), or
    upright and stretched (the two ways the toy world poses a shape)."""
    if shape == "circle":
        return [(0.0, 1.0)] + [(0.0, a) for a in ASPECTS]
    turns = [(float(a), 1.0) for a in np.arange(0.0, SYMMETRY[shape] - 1e-6, ANGLE_STEP)]
    return turns + [(0.0, a) for a in ASPECTS]


def classify_shape(mask: np.ndarray, any_pose: bool = False) -> str | None:
    """The shape whose template, with the mask's area and centroid, has the highest IoU with it;
    upright templates only, or with ``any_pose`` each shape's best over ``shape_poses``."""
    ys, xs = np.nonzero(mask)
    if len(xs) < 4:
        return None
    centroid, size = np.array([xs.mean(), ys.mean()]), mask.shape[0]
    poses = shape_poses if any_pose else (lambda _: [(0.0, 1.0)])
    scores = [max(iou(mask, shape_template(s, len(xs), centroid, size, *p)) for p in poses(s)) for s in SHAPES]
    return SHAPES[int(np.argmax(scores))]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB between two uint8 images (or float arrays in [0, 255])."""
    mse = np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def score_samples(
    images: np.ndarray, combos: list[tuple[str, str, str]], masks: np.ndarray | None = None, any_pose: bool = False
) -> dict:
    """Accuracy of the prompted (colour, shape, ground) ``combos`` in ``images`` uint8 (N, H, W, 3)
    ("both": colour and shape right; shapes in any pose with ``any_pose``), and when ``masks`` bool
    (N, H, W) are given, the mean IoU of the detected object with them."""
    hits_c, hits_s, hits_g, ious = [], [], [], []
    for i, img in enumerate(images):
        colour, obj = detect_object(img)
        hits_c.append(colour == combos[i][0])
        hits_s.append(classify_shape(obj, any_pose) == combos[i][1])
        hits_g.append(detect_ground(img) == combos[i][2])
        if masks is not None:
            ious.append(iou(obj, masks[i]))
    mean = lambda hits: round(float(np.mean(hits)), 4)  # noqa: E731
    out = {
        "colour_accuracy": mean(hits_c),
        "shape_accuracy": mean(hits_s),
        "both_accuracy": mean(np.logical_and(hits_c, hits_s)),
        "ground_accuracy": mean(hits_g),
        "n": len(images),
    }
    if masks is not None:
        out["mask_iou"] = round(float(np.mean(ious)), 4)
    return out
