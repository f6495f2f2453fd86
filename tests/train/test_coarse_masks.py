"""Coarse training masks: each kind covers the object; a rigid one carries frame 1's blob along the path."""

import numpy as np
import pytest

from tasks.common.toy import ToyObject, pattern_params, random_motion_params, render_objects
from tasks.train.coarse import KINDS, coarsen, maybe_coarsen


@pytest.fixture(scope="module")
def spin_window():
    rng = np.random.default_rng(0)
    obj = ToyObject("red", "square", 8.0, "spin", pattern_params("spin", random_motion_params("spin", rng)))
    return render_objects([obj], "grass", 64, 8, rng)[1][0]


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "rigid"])
def test_each_frames_coarse_mask_covers_the_object_and_is_larger(kind, spin_window):
    coarse = coarsen(spin_window, kind, np.random.default_rng(1))
    assert (coarse | spin_window == coarse).all()  # the object is inside
    if kind != "hull":  # a square is (nearly) its own hull
        assert (coarse.sum((1, 2)) > spin_window.sum((1, 2))).all()


def test_a_stars_hull_fills_its_notches():
    rng = np.random.default_rng(4)
    star = render_objects([ToyObject("red", "star", 9.0, "run", random_motion_params("run", rng))], "sand", 64, 2, rng)
    exact = star[1][0]
    assert (coarsen(exact, "hull", rng).sum((1, 2)) > 1.3 * exact.sum((1, 2))).all()


def test_a_rigid_mask_is_one_blob_moved_to_each_frames_place(spin_window):
    coarse = coarsen(spin_window, "rigid", np.random.default_rng(2))
    first = coarse[0][np.ix_(np.any(coarse[0], 1), np.any(coarse[0], 0))]
    for exact, mask in zip(spin_window, coarse):
        box = mask[np.ix_(np.any(mask, 1), np.any(mask, 0))]
        np.testing.assert_array_equal(box, first)  # the same silhouette in every frame: no turn shows
        centre = np.argwhere(mask).mean(0)
        assert np.abs(centre - np.argwhere(exact).mean(0)).max() <= 1.5  # rounded to whole pixels
    assert not all(np.array_equal(spin_window[0], m) for m in spin_window[1:])  # while the exact masks turn


def test_maybe_coarsen_keeps_the_masks_at_probability_zero_and_changes_them_at_one(spin_window):
    rng = np.random.default_rng(3)
    assert maybe_coarsen(spin_window, 0.0, list(KINDS), rng) is spin_window
    assert not np.array_equal(maybe_coarsen(spin_window, 1.0, ["box"], rng), spin_window)


def test_coarse_masks_keep_float_windows_and_leave_them_exact_at_probability_zero(spin_window):
    import torch

    from tasks.train.coarse import CoarseMasks

    window = torch.from_numpy(spin_window).float()
    assert CoarseMasks(0.0, list(KINDS), seed=0)(window) is window
    coarse = CoarseMasks(1.0, ["ellipse"], seed=0)(window)
    assert coarse.dtype == window.dtype and coarse.shape == window.shape and (coarse >= window).all()
