"""Overlap of binary masks: the one IoU every stage reports."""

from __future__ import annotations

import numpy as np


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks (any shape); 1.0 when both are empty."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def frame_ious(found: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-frame IoU of two bool (F, H, W) sequences (a frame where both are empty scores 1), with the
    per-frame intersections and unions it came from (float64, int, int; each of length F)."""
    found, wanted = np.asarray(found, bool), np.asarray(wanted, bool)
    inter = (found & wanted).sum(axis=(1, 2))
    union = (found | wanted).sum(axis=(1, 2))
    return np.where(union > 0, inter / np.maximum(union, 1), 1.0), inter, union
