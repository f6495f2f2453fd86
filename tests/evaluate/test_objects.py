"""Per-object scores on rendered multi-object truth: right colours score 1, swapped colours 0."""

import numpy as np
import pytest

from tasks.common.toy import COLOURS, ToyObject, render_objects
from tasks.evaluate.objects import object_scores, prompt_colour


def crossing(colours=("red", "yellow")):
    objects = [
        ToyObject(colours[0], "circle", 7.0, "run", (0.0, 1.0, 2.0, 0.2)),
        ToyObject(colours[1], "square", 7.0, "run", (1.0, 0.0, 2.0, 0.3)),
    ]
    return render_objects(objects, "grass", 64, 13, np.random.default_rng(0))  # frame 6: both land mid-way


def test_the_rendered_truth_scores_each_object_on_its_own_mask():
    frames, masks = crossing()
    rows = object_scores(frames, masks, ["red", "yellow"], min_pixels=4)
    for row in rows:
        assert row["colour_accuracy"] == 1.0
        assert row["iou"] > 0.9
        assert row["missing_frames"] == 0


def test_an_object_in_the_other_objects_colour_scores_zero():
    frames, masks = crossing(("yellow", "yellow"))  # object 0 painted in object 1's colour
    rows = object_scores(frames, masks, ["red", "yellow"], min_pixels=4)
    assert rows[0]["colour_accuracy"] == 0.0
    assert rows[0]["iou"] == pytest.approx(0.0, abs=0.05)  # no red anywhere (frames where both are empty score 1)
    assert rows[1]["colour_accuracy"] == 1.0
    # the IoU of object 1 suffers too: the yellow found is both objects, its own mask only one
    assert rows[1]["iou"] < 0.8


def test_masks_of_the_objects_never_overlap_and_cover_what_is_drawn():
    frames, masks = crossing()
    assert not (masks[0] & masks[1]).any()
    assert (masks[0] | masks[1]).sum() > 0
    area = masks[0].sum(axis=(1, 2))
    assert area.min() < 0.8 * area.max()  # at the crossing the circle is partly hidden behind the square


def test_prompt_colour():
    assert prompt_colour("a Pink star runs across a sandy plain") == "pink"
    with pytest.raises(ValueError, match="names no toy colour"):
        prompt_colour("a green frog")
    assert set(COLOURS) >= {"red", "yellow"}
