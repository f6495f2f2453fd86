"""A click on the first frame cuts the object under it out: SAM when the masks stage has a SAM
checkpoint (``masks.sam_checkpoint``), else GrabCut seeded by a colour flood fill from the click.

SAM is prompted with the click as one foreground point and its best-scoring mask is kept (as the
masks stage does for a manifest's points). Without SAM there is no classical method for one still
picture and one point: the masks stage's fallback needs a video (it finds what moves). So the
region of colours near the clicked pixel's, connected to it, seeds GrabCut (``tasks.segment.fallback``),
which settles the edge; on flat-coloured toy objects the flood fill alone is already right.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from studio.bounds import readable
from tasks.masks.stage import MasksConfig
from tasks.segment.fallback import FallbackSettings, grabcut_frame

FLOOD_TOLERANCE = 60  # per channel, from the clicked colour: toy objects lie far from every ground colour
# a cut-out smaller than this (pixels, or this share of the frame) is most likely a speck of the object
TINY_PIXELS, TINY_SHARE = 16, 1 / 400


def tiny_cutout(mask: np.ndarray) -> str | None:
    """A warning when a cut-out kept only a few pixels (a click on a detail, or SAM unsure), else None."""
    kept, least = int(mask.sum()), max(TINY_PIXELS, round(mask.size * TINY_SHARE))
    if kept >= least:
        return None
    return (
        f"the cut-out kept only {kept} pixel(s) of {mask.shape[1]}x{mask.shape[0]} (fewer than {least}): "
        "probably a speck of the object; click nearer its middle, or brush the mask"
    )


class Cutter:
    """Cuts objects out of first frames, with the method the masks stage is configured for."""

    def __init__(self, masks: MasksConfig):
        self.cfg = masks
        self.use_sam = masks.chosen_method() == "sam"
        self._predictor = None
        self._lock = threading.Lock()

    def describe(self) -> str:
        if self.use_sam:
            return f"SAM ({self.cfg.sam_model_type}, {self.cfg.sam_checkpoint})"
        return "GrabCut seeded by a colour flood fill from the click (no masks.sam_checkpoint set)"

    def cut(self, image: np.ndarray, x: float, y: float) -> np.ndarray:
        """The object at pixel (x, y) of ``image`` uint8 (H, W, 3) RGB, bool (H, W)."""
        h, w = image.shape[:2]
        if not (0 <= x < w and 0 <= y < h):
            raise ValueError(f"the click ({readable(x)}, {readable(y)}) is outside the {w}x{h} first frame")
        with self._lock:  # one SAM embedding or GrabCut at a time: the two cores are shared
            if self.use_sam:
                return self._sam(image, x, y)
            return flood_grabcut(image, int(x), int(y), self.cfg.fallback_settings())

    def _sam(self, image: np.ndarray, x: float, y: float) -> np.ndarray:
        if self._predictor is None:
            from tasks.segment.sam import FramePredictor, load_sam

            self._predictor = FramePredictor(
                load_sam(self.cfg.sam_checkpoint, self.cfg.sam_model_type, self.cfg.sam_device)
            )
        self._predictor.set_image(np.ascontiguousarray(image))
        masks, scores, _ = self._predictor.predict(
            point_coords=np.array([[x, y]], np.float32), point_labels=np.array([1]), multimask_output=True
        )  # one point is ambiguous (part, object, group): ask for 3, keep the best scored
        return np.asarray(masks[int(np.argmax(scores))], bool)


def flood_region(image: np.ndarray, x: int, y: int, tolerance: int = FLOOD_TOLERANCE) -> np.ndarray:
    """Pixels connected to (x, y) whose colour is within ``tolerance`` of its colour, bool (H, W)."""
    h, w = image.shape[:2]
    filled = np.zeros((h + 2, w + 2), np.uint8)
    flags = 4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8)
    diff = (tolerance,) * 3
    cv2.floodFill(np.ascontiguousarray(image).copy(), filled, (x, y), 0, diff, diff, flags)
    return filled[1:-1, 1:-1].astype(bool)


def flood_grabcut(image: np.ndarray, x: int, y: int, settings: FallbackSettings) -> np.ndarray:
    seed = flood_region(image, x, y)
    if seed.mean() > 0.5:
        return seed  # the click was on the ground: GrabCut has no background left to learn from
    mask = grabcut_frame(image, seed, settings)
    # GrabCut may drift to a neighbour of similar colour; the clicked pixel must stay in the object
    return mask if mask[y, x] else seed
