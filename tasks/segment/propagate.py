"""Carrying a first-frame mask through a clip with a promptable segmenter, frame by frame.

Frame t+1 is prompted with the padded box of mask t plus one positive point deep inside mask t;
of the segmenter's candidates the one that overlaps mask t most is kept. A kept mask that is
empty, or whose area or position jumps past a threshold, means the object was lost: the frame
is re-prompted (the box alone, padded wider; then an optional ``recover`` hook, e.g. SAM's
automatic candidates), and if that fails too the last good mask is carried over and the frame
is reported as unrecovered. Nothing here imports SAM: anything with SamPredictor's
``set_image`` / ``predict`` signature works, which is how the unit tests drive it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import cv2
import numpy as np

from tasks.common.geometry import iou


class Predictor(Protocol):
    """The part of ``segment_anything.SamPredictor`` that propagation uses."""

    def set_image(self, image: np.ndarray) -> None:
        """``image``: uint8 (H, W, 3) RGB."""

    def predict(self, point_coords=None, point_labels=None, box=None, multimask_output=True):
        """Returns masks bool (C, H, W), scores float (C,), low-res logits (C, 256, 256)."""


@dataclass(frozen=True)
class LostRule:
    """When a propagated mask means the object was lost (compared with the last good mask)."""

    max_area_ratio: float = 2.5  # area grew or shrank by more than this factor
    max_shift: float = 0.25  # centroid moved more than this fraction of the frame diagonal


@dataclass
class Track:
    """A mask per frame, bool (F, H, W), and what happened on the way."""

    masks: np.ndarray
    lost: dict[int, str] = field(default_factory=dict)  # frame -> why it was judged lost (re-prompted)
    unrecovered: list[int] = field(default_factory=list)  # lost frames re-prompting could not fix


@dataclass(frozen=True)
class FirstFramePrompt:
    """A user's first-frame prompt in clip pixels: a box [x0, y0, x1, y1] and/or points (N, 2) [x, y]."""

    box: np.ndarray | None = None
    points: np.ndarray | None = None

    @property
    def given(self) -> bool:
        return self.box is not None or self.points is not None


# ---------------------------------------------------------------------------------------------
# geometry


def mask_box(mask: np.ndarray, padding: float = 0.0) -> np.ndarray:
    """Box [x0, y0, x1, y1] float32 in pixels around a non-empty bool (H, W) mask.

    Grown on each side by ``padding`` x the box's width/height, clipped to the frame.
    """
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    x0, y0, x1, y1 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    px, py = padding * (x1 - x0), padding * (y1 - y0)
    return np.array([max(0, x0 - px), max(0, y0 - py), min(w, x1 + px), min(h, y1 + py)], np.float32)


def inner_point(mask: np.ndarray) -> np.ndarray:
    """The pixel deepest inside a non-empty mask (farthest from its edge), as [[x, y]] float32.

    The centroid is not used: for a ring or a crescent it lies outside the object.
    """
    depth = cv2.distanceTransform(np.pad(mask.astype(np.uint8), 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    y, x = np.unravel_index(np.argmax(depth), depth.shape)
    return np.array([[x, y]], np.float32)


def lost_reason(mask: np.ndarray, reference: np.ndarray, rule: LostRule) -> str | None:
    """Why ``mask`` cannot be the object of ``reference`` (the last good mask), or None."""
    if not mask.any():
        return "empty mask"
    area, ref_area = mask.sum(), max(1, reference.sum())
    ratio = area / ref_area
    if ratio > rule.max_area_ratio or ratio < 1 / rule.max_area_ratio:
        return f"area jumped x{ratio:.2f} ({ref_area} -> {area} px)"
    if reference.any():
        shift = np.hypot(*(np.argwhere(mask).mean(0) - np.argwhere(reference).mean(0)))
        diagonal = np.hypot(*mask.shape)
        if shift > rule.max_shift * diagonal:
            return f"centre jumped {shift:.1f} px (> {rule.max_shift:g} x diagonal)"
    return None


def flag_lost(masks: np.ndarray, rule: LostRule) -> dict[int, str]:
    """Frames of a finished sequence bool (F, H, W) where the object looks lost (no re-prompting).

    For methods that cannot be re-prompted (the classical fallbacks): each frame is compared with
    the last frame that was not lost, as propagation does.
    """
    lost, last_good = {}, masks[0]
    for t in range(1, len(masks)):
        reason = lost_reason(masks[t], last_good, rule)
        if reason:
            lost[t] = reason
        else:
            last_good = masks[t]
    if not masks[0].any():
        lost = {0: "empty mask", **lost}
    return lost


def best_candidate(candidates: np.ndarray, scores: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The candidate (C, H, W) that agrees best (IoU) with ``reference``; ties go to the higher score."""
    agreement = [iou(c, reference) for c in candidates]
    order = sorted(range(len(candidates)), key=lambda i: (agreement[i], scores[i]), reverse=True)
    return np.asarray(candidates[order[0]], bool)


# ---------------------------------------------------------------------------------------------
# propagation


def prompt_next(predictor: Predictor, previous: np.ndarray, padding: float, with_point: bool = True) -> np.ndarray:
    """Prompt the predictor's current frame from ``previous`` (a bool mask of the frame before)."""
    masks, scores, _ = predictor.predict(
        point_coords=inner_point(previous) if with_point else None,
        point_labels=np.array([1]) if with_point else None,
        box=mask_box(previous, padding),
        multimask_output=True,
    )
    return best_candidate(np.asarray(masks, bool), np.asarray(scores), previous)


def propagate(
    predictor: Predictor,
    frames: np.ndarray,
    first_mask: np.ndarray,
    rule: LostRule = LostRule(),
    padding: float = 0.1,
    recover: Callable[[int, np.ndarray], np.ndarray | None] | None = None,
    on_frame: Callable[[], None] | None = None,
) -> Track:
    """Propagate ``first_mask`` bool (H, W) through ``frames`` uint8 (F, H, W, 3).

    ``recover(t, last_good)`` may return a new mask for frame t after the cheap re-prompt has
    failed (the predictor still holds frame t). ``on_frame`` is called once per frame (progress).
    """
    if not first_mask.any():
        raise ValueError("the first-frame mask is empty: nothing to propagate")
    track = Track(masks=np.zeros(frames.shape[:3], bool))
    track.masks[0] = last_good = first_mask
    if on_frame:
        on_frame()
    for t in range(1, len(frames)):
        predictor.set_image(frames[t])
        mask = prompt_next(predictor, last_good, padding)
        reason = lost_reason(mask, last_good, rule)
        if reason:
            track.lost[t] = reason
            mask = _reprompt(predictor, t, last_good, rule, padding, recover)
            if mask is None:
                track.unrecovered.append(t)
                mask = last_good
        track.masks[t] = last_good = mask
        if on_frame:
            on_frame()
    return track


def _reprompt(predictor, t, last_good, rule, padding, recover) -> np.ndarray | None:
    # a point can land on the wrong part after a fast move; the box alone, wider, often finds it
    retry = prompt_next(predictor, last_good, max(2 * padding, 0.25), with_point=False)
    if lost_reason(retry, last_good, rule) is None:
        return retry
    if recover is not None:
        retry = recover(t, last_good)
        if retry is not None and lost_reason(retry, last_good, rule) is None:
            return retry
    return None
