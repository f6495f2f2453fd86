"""Evaluate: the metric equations, the toy segmenter on rendered frames, the stage end to end."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tasks.common.toy import Scene, render_video
from tasks.evaluate.stage import clip_scores, mask_scores, toy_segmenter


def test_clip_scores_follow_their_definitions():
    g = torch.Generator().manual_seed(0)
    img, txt = torch.randn(5, 8, generator=g), torch.randn(8, generator=g)
    s = clip_scores(img * 3.0, txt * 0.5)  # scale must not matter: cosines
    n, t = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
    assert s["text_alignment"] == pytest.approx(100 * float(np.mean([n[i] @ t for i in range(5)])), abs=1e-4)
    adjacent = np.mean([float(n[i] @ n[i + 1]) for i in range(4)])
    pairs = np.mean([float(n[i] @ n[j]) for i in range(5) for j in range(i + 1, 5)])
    assert s["consistency_adjacent"] == pytest.approx(100 * adjacent, abs=1e-4)
    assert s["consistency_all_pairs"] == pytest.approx(100 * pairs, abs=1e-4)
    same = clip_scores(img[:1].repeat(4, 1), img[0])
    assert same["consistency_adjacent"] == pytest.approx(100) and same["text_alignment"] == pytest.approx(100)


def test_mask_scores():
    wanted = np.zeros((3, 10, 10), bool)
    wanted[:, 2:6, 2:6] = True  # 16 px
    found = np.zeros_like(wanted)
    found[0, 2:6, 2:6] = True  # exact
    found[1, 2:6, 4:8] = True  # shifted by 2 px: IoU 8 / 24
    s = mask_scores(found, wanted)  # frame 2: nothing found
    assert s["iou_per_frame"] == [1.0, round(8 / 24, 4), 0.0]
    assert s["iou"] == pytest.approx((1 + 8 / 24 + 0) / 3)
    assert s["iou_volume"] == pytest.approx((16 + 8 + 0) / (16 + 24 + 16))
    assert s["centroid_error_px"] == pytest.approx((0 + 2) / 2) and s["missing_frames"] == 1


@pytest.mark.parametrize(
    "colour, shape, ground",
    [
        ("red", "star", "sand"),
        ("black", "circle", "rock"),
        ("yellow", "square", "grass"),
        ("purple", "triangle", "water"),
    ],
)
def test_toy_segmenter_finds_the_rendered_object(colour, shape, ground):
    scene = Scene(colour, shape, ground, "run", radius=9, params=(0.0, 1.0, 2.0, 0.2))
    frames, truth = render_video(scene, 64, 6, np.random.default_rng(0))
    found = toy_segmenter(min_pixels=4)(frames, scene.prompt)
    assert mask_scores(found, truth)["iou"] > 0.85


def test_toy_segmenter_ignores_the_prompt_and_sees_no_object_on_bare_ground():
    scene = Scene("red", "star", "grass", "run", radius=9, params=(0.0, 1.0, 2.0, 0.2))
    frames, truth = render_video(scene, 64, 4, np.random.default_rng(0))
    segment = toy_segmenter(min_pixels=4)
    # the object is found by palette whatever the prompt says (colour is text alignment's job)
    np.testing.assert_array_equal(segment(frames, scene.prompt), segment(frames, "a yellow square"))
    bare = frames.copy()
    bare[truth] = np.array([70, 140, 55], np.uint8)  # paint the object over with grass colour
    assert segment(bare, scene.prompt).sum() == 0
