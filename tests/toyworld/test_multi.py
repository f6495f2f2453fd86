"""Multi-object held-out sequences: different objects on crossing paths, each with its prompt and masks."""

import numpy as np
import yaml

from tasks.common.io import read_mask_pngs
from tasks.common.toy import render_objects
from tasks.common.toy_multi import sample_objects
from tasks.common.toy_palette import COLOUR_NAMES, palette_labels
from tasks.toyworld.multi import render_multi_object_heldout


def test_sequences_hold_different_objects_with_their_own_prompts_and_masks(tmp_path):
    out = render_multi_object_heldout(tmp_path / "multi", n_objects=(2, 3), size=32, n_frames=8)
    rows = yaml.safe_load((out / "manifest.yaml").read_text())["sequences"]
    assert [len(r["objects"]) for r in rows] == [2, 3]
    for row in rows:
        colours, shapes = [o["colour"] for o in row["objects"]], [o["shape"] for o in row["objects"]]
        assert len(set(colours)) == len(colours) and len(set(shapes)) == len(shapes)
        for o in row["objects"]:
            assert o["prompt"].startswith(f"a {o['colour']} {o['shape']} ")
        assert row["joint_prompt"].startswith(" ".join(f"a {c} {s}" for c, s in zip(colours, shapes)))
        assert row["prompt"] == row["objects"][0]["prompt"]  # the scene
        objects = np.stack([read_mask_pngs(out / o["masks"]) for o in row["objects"]])
        np.testing.assert_array_equal(read_mask_pngs(out / row["masks"]), objects.any(0))
        assert (objects.sum(0) <= 1).all()  # visible masks: never two objects on one pixel
        truth = np.load(out / "truth" / f"{row['id']}.npy")  # the rendered video, as the masks show it
        assert truth.shape == (8, 32, 32, 3) and truth.dtype == np.uint8
        labels = palette_labels(truth[0])[objects[0, 0]]
        assert COLOUR_NAMES[np.bincount(labels[labels >= 0]).argmax()] == colours[0]
        centres = np.array([[np.nonzero(m)[1].mean() for m in obj] for obj in objects])
        assert np.sign(centres[0, -1] - centres[0, 0]) == -np.sign(centres[1, -1] - centres[1, 0])  # they cross


def test_the_truth_shows_each_object_in_its_colour_inside_its_mask(tmp_path):
    rng = np.random.default_rng(3)
    objects = sample_objects(3, 64, rng)
    frames, masks = render_objects(objects, "sand", 64, 10, rng)
    for obj, m in zip(objects, masks):
        labels = np.concatenate([palette_labels(f)[mm] for f, mm in zip(frames, m)])
        assert COLOUR_NAMES[np.bincount(labels[labels >= 0]).argmax()] == obj.colour


def test_same_seed_same_sequences(tmp_path):
    a = render_multi_object_heldout(tmp_path / "a", n_objects=(2,), size=32, n_frames=6)
    b = render_multi_object_heldout(tmp_path / "b", n_objects=(2,), size=32, n_frames=6)
    assert (a / "manifest.yaml").read_text() == (b / "manifest.yaml").read_text()
    np.testing.assert_array_equal(read_mask_pngs(a / "multi-000"), read_mask_pngs(b / "multi-000"))
