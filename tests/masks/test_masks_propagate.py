"""Propagation on a synthetic sequence, with a predictor stand-in that returns known candidates."""

import numpy as np
from masks_helpers import moving_square

from tasks.segment.propagate import LostRule, best_candidate, flag_lost, inner_point, lost_reason, mask_box, propagate


class ScriptedPredictor:
    """Stands in for SamPredictor: per frame, candidates made from the true mask by a script.

    ``script[t]`` (default "good") says what frame t's prompted candidates are:
    "good": [a half of the object, the object, the whole frame];
    "lost": [empty, the whole frame] for point+box prompts, the object for a box-only re-prompt;
    "gone": [empty, the whole frame] whatever the prompt.
    """

    def __init__(self, truth: np.ndarray, script: dict[int, str]):
        self.truth, self.script = truth, script
        self.frame_index, self.calls = None, []
        self.frames = None

    def set_image(self, image):
        self.frame_index = next(i for i, f in enumerate(self.frames) if np.array_equal(f, image))

    def predict(self, point_coords=None, point_labels=None, box=None, multimask_output=True):
        t, obj = self.frame_index, self.truth[self.frame_index]
        self.calls.append((t, point_coords is not None, box.copy()))
        empty, full = np.zeros_like(obj), np.ones_like(obj)
        kind = self.script.get(t, "good")
        if kind == "good" or (kind == "lost" and point_coords is None):
            half = obj.copy()
            half[:, : np.argwhere(obj)[:, 1].mean().astype(int)] = False
            cands = [half, obj, full]
        else:
            cands = [empty, full]
        return np.stack(cands), np.linspace(0.9, 0.5, len(cands)), None


def run(script, recover=None, n_frames=8):
    frames, truth = moving_square(n_frames=n_frames)
    predictor = ScriptedPredictor(truth, script)
    predictor.frames = frames
    track = propagate(predictor, frames, truth[0], LostRule(), padding=0.1, recover=recover)
    return track, truth, predictor


def test_follows_the_object_choosing_the_candidate_that_agrees_with_the_last_mask():
    track, truth, predictor = run({})
    assert (track.masks == truth).all()
    assert track.lost == {} and track.unrecovered == []
    # every prompt is the previous mask's padded box plus a point inside it
    for t, with_point, box in predictor.calls:
        x0, y0, x1, y1 = box
        ys, xs = np.nonzero(truth[t - 1])
        assert with_point and x0 <= xs.min() and x1 >= xs.max() + 1 and y0 <= ys.min() and y1 >= ys.max() + 1


def test_lost_object_is_re_prompted_and_recovered():
    track, truth, predictor = run({3: "lost"})
    assert (track.masks == truth).all()
    assert list(track.lost) == [3] and track.unrecovered == []
    assert any(t == 3 and not with_point for t, with_point, _ in predictor.calls)


def test_unrecoverable_frame_carries_the_last_good_mask_and_is_reported():
    track, truth, _ = run({4: "gone"})
    assert track.lost.keys() == {4} and track.unrecovered == [4]
    assert (track.masks[4] == truth[3]).all()  # carried over, not empty
    assert (track.masks[5:] == truth[5:]).all()  # and the object is picked up again after


def test_recover_hook_is_asked_when_the_re_prompt_fails():
    asked = []

    def recover(t, last_good):
        asked.append(t)
        return moving_square(n_frames=8)[1][t]

    track, truth, _ = run({2: "gone"}, recover=recover)
    assert asked == [2] and track.unrecovered == [] and (track.masks == truth).all()


def test_lost_reason_empty_area_and_position():
    rule = LostRule(max_area_ratio=2.0, max_shift=0.2)
    ref = np.zeros((40, 40), bool)
    ref[10:20, 10:20] = True
    assert lost_reason(np.zeros_like(ref), ref, rule) == "empty mask"
    big = np.zeros_like(ref)
    big[5:30, 5:30] = True
    assert "area" in lost_reason(big, ref, rule)
    far = np.zeros_like(ref)
    far[28:38, 28:38] = True
    assert "centre" in lost_reason(far, ref, rule)
    near = np.zeros_like(ref)
    near[12:22, 12:22] = True
    assert lost_reason(near, ref, rule) is None


def test_geometry_helpers():
    m = np.zeros((20, 30), bool)
    m[5:10, 4:14] = True
    assert mask_box(m).tolist() == [4, 5, 14, 10]
    assert mask_box(m, padding=1.0).tolist() == [0, 0, 24, 15]  # clipped at the frame
    ((x, y),) = inner_point(m)
    assert m[int(y), int(x)]
    ring = np.zeros((21, 21), bool)
    ring[2:19, 2:19] = True
    ring[6:15, 6:15] = False
    ((x, y),) = inner_point(ring)
    assert ring[int(y), int(x)]  # inside the ring itself, not in its hole
    cands = np.stack([m, ~m])
    assert (best_candidate(cands, np.array([0.1, 0.9]), m) == m).all()


def test_flag_lost_marks_empty_and_jumping_frames_of_a_finished_sequence():
    _, truth = moving_square(n_frames=6)
    masks = truth.copy()
    masks[2] = False
    masks[4] = False
    masks[4, 0:10, 20:30] = True  # same size, but 16 px from where it was
    lost = flag_lost(masks, LostRule())
    assert list(lost) == [2, 4] and lost[2] == "empty mask" and "centre" in lost[4]
