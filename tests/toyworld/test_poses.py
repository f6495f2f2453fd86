"""The toy renderer's turned and stretched shapes, and the two motions that live inside the object."""

import numpy as np
import pytest

from tasks.common.toy import (
    SHAPES,
    ToyObject,
    object_pose,
    pattern_params,
    random_motion_params,
    render_object_mask,
    render_objects,
)


@pytest.mark.parametrize("shape", SHAPES)
def test_a_pose_keeps_the_area_and_the_centre(shape):
    upright = render_object_mask(shape, 32, 32, 12.0, 64)
    for angle, aspect in [(0.6, 1.0), (0.0, 0.6), (0.0, 1.6), (2.0, 1.3)]:
        posed = render_object_mask(shape, 32, 32, 12.0, 64, angle, aspect)
        assert posed.sum() == pytest.approx(upright.sum(), rel=0.04)
        if shape != "triangle":  # the triangle's centroid is not its centre
            ys, xs = np.nonzero(posed > 0.5)
            assert abs(xs.mean() - 31.5) < 1.0 and abs(ys.mean() - 31.5) < 1.0


def test_a_stretch_is_taller_and_a_squash_wider():
    def extent(mask):
        ys, xs = np.nonzero(mask > 0.5)
        return np.ptp(ys) + 1, np.ptp(xs) + 1

    h, w = extent(render_object_mask("square", 32, 32, 12.0, 64, 0.0, 1.6))
    assert h > 1.45 * w
    h, w = extent(render_object_mask("circle", 32, 32, 12.0, 64, 0.0, 0.6))
    assert w > 1.45 * h


def test_a_quarter_turn_leaves_a_square_as_it_was_and_an_eighth_does_not():
    upright = render_object_mask("square", 32, 32, 12.0, 64)
    assert np.abs(render_object_mask("square", 32, 32, 12.0, 64, np.pi / 2) - upright).max() < 0.02
    assert np.abs(render_object_mask("square", 32, 32, 12.0, 64, np.pi / 4) - upright).max() > 0.5


def test_spin_turns_steadily_clockwise_and_squash_is_tall_in_the_air_and_wide_on_landing():
    rng = np.random.default_rng(0)
    spin = pattern_params("spin", random_motion_params("spin", rng))
    angles, aspects = object_pose("spin", spin, 16)
    np.testing.assert_allclose(np.diff(angles), 2 * np.pi * 0.75 / 15)
    assert (aspects == 1).all()
    squash = pattern_params("squash", random_motion_params("squash", rng))
    angles, aspects = object_pose("squash", squash, 17)
    assert (angles == 0).all()
    # two hops in 17 frames: on the ground at frames 0, 8, 16, at the top at 4 and 12
    assert aspects[[0, 8, 16]] == pytest.approx(np.exp(-0.4)) and aspects[[4, 12]] == pytest.approx(np.exp(0.4))


def test_a_drawn_path_moves_the_object_and_the_motion_still_poses_it():
    rng = np.random.default_rng(1)
    obj = ToyObject("red", "square", 8.0, "spin", (0.0, 1.0, 0.5, 0.75))
    path = np.stack([np.linspace(50, 14, 16), np.linspace(20, 44, 16)], 1)  # right to left, downwards
    _, masks = render_objects([obj], "grass", 64, 16, rng, paths=[path])
    centres = np.array([[np.nonzero(m)[1].mean(), np.nonzero(m)[0].mean()] for m in masks[0]])
    np.testing.assert_allclose(centres, path - 0.5, atol=0.6)
    assert (masks[0][3] != masks[0][3 + 4]).any()  # turned by 72 degrees: not the same silhouette
