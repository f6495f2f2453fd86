"""The classical fallback: the IoU goal on toy-world clips, and its helpers."""

import numpy as np
import pytest
from masks_helpers import moving_square

from tasks.common.io import load_clip
from tasks.masks.stage import mask_iou
from tasks.segment.fallback import (
    FALLBACKS,
    FallbackSettings,
    fill_holes,
    keep_main_regions,
    median_background_masks,
    motion_masks,
)


def test_median_background_reaches_the_iou_goal_on_toy_clips(toy_clips):
    for path in sorted(toy_clips.glob("*.npz")):
        clip = load_clip(path)
        masks = median_background_masks(clip["frames"])
        assert masks.dtype == bool and masks.shape == clip["truth_masks"].shape
        assert np.mean(mask_iou(masks, clip["truth_masks"])) >= 0.9, path.name


def test_object_that_never_leaves_a_pixel_is_still_found():
    # a square that moves 1 px a frame covers its middle in every frame: the median there is the
    # object itself, and only the object-colour exclusion + painted-in background recovers it
    frames, truth = moving_square(n_frames=8, size=32, side=12, step=1)
    masks = median_background_masks(frames)
    assert np.mean(mask_iou(masks, truth)) >= 0.9


def test_still_clip_has_no_motion():
    frames, _ = moving_square(n_frames=5, step=0)
    frames[:] = frames[0]  # nothing moves at all
    assert not motion_masks(frames).any()


@pytest.mark.parametrize("name", sorted(FALLBACKS))
def test_each_fallback_returns_a_mask_per_frame(name):
    frames, truth = moving_square()
    masks = FALLBACKS[name](frames, FallbackSettings())
    assert masks.shape == truth.shape and masks.dtype == bool and masks.any(axis=(1, 2)).all()


def test_grabcut_follows_a_box_prompt():
    frames, truth = moving_square()
    masks = FALLBACKS["grabcut"](frames, FallbackSettings(), box=(1, 10, 13, 22))
    assert np.mean(mask_iou(masks, truth)) > 0.5


def test_keep_main_regions_drops_specks_and_fills_holes():
    m = np.zeros((20, 20), bool)
    m[2:12, 2:12] = True
    m[5:8, 5:8] = False  # a hole
    m[16, 16] = True  # a speck
    kept = keep_main_regions(m, 0.2)
    assert kept[6, 6] and not kept[16, 16] and kept.sum() == 100
    assert fill_holes(np.zeros((4, 4), bool)).sum() == 0
