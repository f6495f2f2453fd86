"""Motion fidelity: 1 on the true renders, 0 for a rigid object or a turn the other way."""

from types import SimpleNamespace

import numpy as np
import pytest

from tasks.common.toy import ToyObject, pattern_params, random_motion_params, render_objects
from tasks.common.toy_palette import detect_object
from tasks.evaluate.motion import drawn_mask_scores, fidelity, motion_series, reference


def _video(shape, motion, params, seed, paths=None):
    rng = np.random.default_rng(seed)
    obj = ToyObject("red", shape, float(rng.uniform(6.4, 10.9)), motion, params)
    frames, masks = render_objects([obj], "grass", 64, 16, rng, paths)
    return frames, masks[0]


def _params(motion, seed, **change):
    params = list(pattern_params(motion, random_motion_params(motion, np.random.default_rng(seed))))
    for index, value in change.items():
        params[int(index[1:])] = value
    return tuple(params)


def _found(frames):
    return np.stack([detect_object(f)[1] for f in frames])  # the object by its colour, as generated frames


@pytest.fixture(scope="module")
def spin_reference():
    shapes = ["square", "triangle", "star", "diamond"]
    clips = [(_video(s, "spin", _params("spin", i), i)[1], s) for i, s in enumerate(shapes)]
    return reference(clips, "spin")


def test_the_spin_reference_is_the_patterns_speed(spin_reference):
    assert np.rad2deg(spin_reference) == pytest.approx(0.75 * 360 / 15, abs=1.0)


@pytest.mark.parametrize("shape", ["square", "triangle", "star", "diamond"])
def test_spin_fidelity_is_one_on_truth_and_zero_for_rigid_or_reversed(shape, spin_reference):
    frames, _ = _video(shape, "spin", _params("spin", 10), 10)
    assert fidelity(motion_series(_found(frames), shape, "spin"), shape, "spin", spin_reference) > 0.95
    _, reversed_masks = _video(shape, "spin", _params("spin", 11, p3=-0.75), 11)
    assert fidelity(motion_series(reversed_masks, shape, "spin"), shape, "spin", spin_reference) == 0
    _, rigid = _video(shape, "run", random_motion_params("run", np.random.default_rng(12)), 12)
    assert fidelity(motion_series(rigid, shape, "spin"), shape, "spin", spin_reference) < 0.1


@pytest.mark.parametrize("shape", ["circle", "square", "star"])
def test_squash_fidelity_is_one_on_truth_and_low_for_rigid_or_off_beat(shape):
    params = _params("squash", 20)
    frames, masks = _video(shape, "squash", params, 20)
    truth = motion_series(masks, shape, "squash")
    assert fidelity(motion_series(_found(frames), shape, "squash"), shape, "squash", 0.0, truth) > 0.9
    _, rigid = _video(shape, "squash", _params("squash", 20, p4=0.0), 20)
    assert fidelity(motion_series(rigid, shape, "squash"), shape, "squash", 0.0, truth) < 0.1
    _, off_beat = _video(shape, "squash", _params("squash", 20, p2=3.0), 20)  # three hops where two were drawn
    assert fidelity(motion_series(off_beat, shape, "squash"), shape, "squash", 0.0, truth) < 0.5


def test_containment_and_iou_against_the_truth():
    truth = np.zeros((2, 16, 16), bool)
    truth[:, 4:8, 4:8] = True
    drawn = np.zeros_like(truth)
    drawn[:, 2:10, 2:10] = True
    found = truth.copy()
    found[1, 4:8, 8:12] = True  # half of frame 2's object outside the drawn mask by 2 of its 4 columns
    scores = drawn_mask_scores(found, drawn, truth)
    assert scores["containment"] == pytest.approx((1 + 24 / 32) / 2)
    assert scores["iou_truth"] == pytest.approx((1 + 0.5) / 2)


def test_the_evaluate_stage_scores_a_drawn_set_true_video_high_and_a_frozen_one_low(tmp_path, spin_reference):
    from bench.learned_motion.learned_motion import write_sets
    from tasks.evaluate.motion import LearnedMotion

    write_sets(tmp_path)
    cfg = SimpleNamespace(sequences=str(tmp_path / "spin"), clips_dir="unused", masks_dir="unused")
    learned = LearnedMotion.from_config(cfg)
    learned.references["spin"] = spin_reference  # the few-shot clips' figure (measured on their masks in the stage)
    assert sorted(learned.rows) == [f"drawn-spin-00{i}" for i in range(4)]
    truth = np.load(tmp_path / "spin" / "truth" / "drawn-spin-000.npy")
    scores = learned.scores("drawn-spin-000", truth, min_pixels=4)
    assert scores["motion_fidelity"] > 0.95 and scores["containment"] > 0.95 and scores["iou_truth"] > 0.9
    frozen = learned.scores("drawn-spin-000", np.repeat(truth[:1], len(truth), 0), min_pixels=4)
    assert frozen["motion_fidelity"] == 0 and frozen["iou_truth"] < 0.5  # neither turning nor moving
    assert learned.scores("heldout-000", truth, min_pixels=4) == {}  # a sequence without such a motion


def test_the_training_set_carries_one_rigid_mask_along_each_clips_own_path(tmp_path, spin_reference):
    import pandas as pd

    from bench.learned_motion.learned_motion import write_training_set
    from tasks.common.io import read_mask_pngs
    from tasks.evaluate.motion import LearnedMotion

    clips = tmp_path / "clips"
    clips.mkdir()
    rows = []
    for i, shape in enumerate(["square", "star"]):
        frames, masks = _video(shape, "spin", _params("spin", i), i)
        np.savez(clips / f"toy-00{i}.npz", frames=frames, truth_masks=masks)
        rows.append({"id": f"toy-00{i}", "clip": f"toy-00{i}.npz", "prompt": f"a red {shape} spins across a meadow",
                     "colour": "red", "shape": shape, "ground": "grass", "motion": "spin"})  # fmt: skip
    pd.DataFrame(rows).to_csv(clips / "manifest.csv", index=False)
    out = write_training_set(clips, tmp_path / "training")

    truth = read_mask_pngs(out / "truth" / "training-toy-000")
    drawn = read_mask_pngs(out / "training-toy-000")
    inside = [d for d in drawn if d.any()]
    assert len(inside) == len(drawn) and len({int(d.sum()) for d in inside[:4]}) == 1  # one mask, not clipped
    assert all((d & t).sum() > 0.95 * t.sum() for d, t in zip(drawn, truth))  # it covers the object
    drawn_end, truth_end, drawn_start = (np.argwhere(m).mean(0) for m in (drawn[-1], truth[-1], drawn[0]))
    assert np.hypot(*(drawn_end - drawn_start)) > 10 and np.hypot(*(drawn_end - truth_end)) < 1.5  # its path

    learned = LearnedMotion.from_config(SimpleNamespace(sequences=str(out), clips_dir="-", masks_dir="-"))
    learned.references["spin"] = spin_reference
    scores = learned.scores("training-toy-000", np.load(out / "truth" / "training-toy-000.npy"), min_pixels=4)
    assert scores["motion_fidelity"] > 0.9 and scores["containment"] > 0.9  # the clip itself turns, inside
