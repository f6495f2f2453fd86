"""The toy world renders what it says: seeded, varied, and its masks are exactly the object."""

import cv2
import numpy as np
import pytest
import yaml
from scipy.ndimage import binary_dilation, binary_erosion

from tasks.common.io import read_mask_pngs
from tasks.common.toy import COLOURS, GROUNDS, MOTIONS, SHAPES, Scene, object_path, render_video
from tasks.toyworld.stage import ToyWorldConfig, render_toyworld, sample_scenes


def test_world_is_varied_enough():
    assert len(SHAPES) >= 4 and len(COLOURS) >= 5 and len(MOTIONS) >= 3 and len(GROUNDS) >= 3


def test_same_seed_same_video_other_seed_other_video():
    cfg = ToyWorldConfig(size=32, n_frames=6)
    a = [render_video(s, 32, 6, np.random.default_rng(1)) for s in sample_scenes(cfg, 3, np.random.default_rng(0))]
    b = [render_video(s, 32, 6, np.random.default_rng(1)) for s in sample_scenes(cfg, 3, np.random.default_rng(0))]
    c = [render_video(s, 32, 6, np.random.default_rng(1)) for s in sample_scenes(cfg, 3, np.random.default_rng(5))]
    for (fa, ma), (fb, mb) in zip(a, b):
        np.testing.assert_array_equal(fa, fb)
        np.testing.assert_array_equal(ma, mb)
    assert any(not np.array_equal(fa, fc) for (fa, _), (fc, _) in zip(a, c))


@pytest.mark.parametrize("shape", SHAPES)
def test_mask_is_the_object_pixels(shape):
    scene = Scene("red", shape, "grass", "jump", radius=10, params=(0.5, 1.0, 0.3))
    frames, masks = render_video(scene, 64, 4, np.random.default_rng(0))
    red = np.array(COLOURS["red"])
    edge = np.ones((1, 3, 3))  # per-frame 8-neighbourhood: edge pixels are blends of object and ground
    # inside the mask, away from its edge, the pixel is the object's colour (up to the +-8% shade)
    inside = frames[binary_erosion(masks, structure=edge)].astype(int)
    assert len(inside) > 0 and np.abs(inside - red).max() <= 0.1 * 255
    # outside, away from the edge, pixels are ground: far from red
    far = ~binary_dilation(masks, structure=edge)
    assert np.abs(frames[far].astype(int) - red).sum(-1).min() > 100
    assert 0.02 < masks.mean() < 0.3


@pytest.mark.parametrize("motion", sorted(MOTIONS))
def test_paths_stay_in_frame_and_move(motion):
    from tasks.common.toy import random_motion_params

    params = random_motion_params(motion, np.random.default_rng(0))
    path = object_path(motion, params, radius=8, size=64, n_frames=16)
    assert path.min() >= 9 and path.max() <= 55
    assert np.abs(np.diff(path, axis=0)).sum() > 10  # it moves
    if motion == "run":
        assert path[-1, 0] - path[0, 0] > 30  # left to right


def test_render_toyworld_writes_the_dataset(tmp_path):
    cfg = ToyWorldConfig(size=32, n_frames=8, n_train=3, n_heldout=2, heldout_frames=10, out_dir=str(tmp_path / "toy"))
    out = render_toyworld(cfg)
    rows = yaml.safe_load((out / "manifest.yaml").read_text())["videos"]
    assert [r["id"] for r in rows] == ["toy-000", "toy-001", "toy-002"]
    for r in rows:
        assert r["prompt"] == f"a {r['colour']} {r['shape']} {MOTIONS['run']} {GROUNDS[r['ground']]}"
        assert (out / r["video"]).stat().st_size > 0
        assert read_mask_pngs(out / r["truth_masks"]).shape == (8, 32, 32)
    held = yaml.safe_load((out / "heldout" / "manifest.yaml").read_text())["sequences"]
    assert len(held) == 2 and read_mask_pngs(out / "heldout" / held[0]["masks"]).shape == (10, 32, 32)
    assert (out / "preview.png").is_file()
    for row in held:  # the true first frame: the object exactly where mask 0 is, in the prompted colour
        frame = cv2.cvtColor(cv2.imread(str(out / "heldout" / row["first_frame"])), cv2.COLOR_BGR2RGB)
        mask = read_mask_pngs(out / "heldout" / row["masks"])[0]
        assert frame.shape == (32, 32, 3)
        inside = frame[binary_erosion(mask)].astype(float).mean(0)
        assert np.abs(inside - np.array(COLOURS[row["colour"]])).max() < 25


def test_multi_object_training_videos_leave_the_other_videos_as_they_were(tmp_path):
    def render(n_multi):
        cfg = ToyWorldConfig(
            size=32, n_frames=6, n_train=2, n_multi_train=n_multi, n_heldout=1, out_dir=str(tmp_path / str(n_multi))
        )
        return render_toyworld(cfg)

    plain, multi = render(0), render(2)
    rows = yaml.safe_load((multi / "manifest.yaml").read_text())["videos"]
    assert [r["id"] for r in rows] == ["toy-000", "toy-001", "toy-multi-000", "toy-multi-001"]
    assert yaml.safe_load((plain / "manifest.yaml").read_text())["videos"] == rows[:2]
    for sub in (
        "videos/toy-000.mp4",
        "truth/toy-001/0005.png",
        "heldout/manifest.yaml",
        "heldout/heldout-000/0000.png",
    ):
        assert (plain / sub).read_bytes() == (multi / sub).read_bytes()
    for row in rows[2:]:
        assert len(row["objects"]) == int(row["id"][-1]) + 2 and row["prompt"] == row["objects"][0]["prompt"]
        objects = np.stack([read_mask_pngs(multi / o["masks"]) for o in row["objects"]])
        np.testing.assert_array_equal(objects.any(0), read_mask_pngs(multi / row["truth_masks"]))
