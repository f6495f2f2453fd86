"""Bad input: each fails with a message naming the video (and frame or file), and writes nothing."""

import numpy as np
import pytest
import torch
import yaml
from masks_helpers import masks_config, moving_square
from PIL import Image

from tasks.common.io import BadInput, read_mask_pngs, write_mask_pngs
from tasks.common.params import ConfigError, load_stage_config
from tasks.common.toy import Scene, render_video
from tasks.common.video import write_mp4
from tasks.ingest.manifest import parse_manifest
from tasks.ingest.stage import IngestConfig, decode_clip
from tasks.masks.stage import MasksConfig, run_masks, validate_object_masks, validate_user_masks
from tasks.segment.sam import build_tiny_sam, load_sam


def assert_nothing_written(tmp_path):
    assert not (tmp_path / "metrics").exists()
    assert [p.name for p in (tmp_path / "masks").iterdir()] == ["old.txt"]  # the previous output, untouched


def previous_output(tmp_path):
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "old.txt").write_text("from the last good run")


def test_method_sam_without_checkpoint_names_the_param(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_text("masks:\n  method: sam\n")
    with pytest.raises(ConfigError, match=r"masks\.sam_checkpoint: .*needs a SAM checkpoint"):
        load_stage_config(MasksConfig, "masks", p)


def test_missing_checkpoint_file_names_the_param(clips, tmp_path):
    frames, _ = moving_square()
    clips.add("v", frames)
    previous_output(tmp_path)
    cfg = masks_config(clips.write(), tmp_path, sam_checkpoint=str(tmp_path / "nope.pth"))  # method auto
    with pytest.raises(ConfigError, match=r"masks\.sam_checkpoint: '.*nope.pth' is not a file"):
        run_masks(cfg)
    assert_nothing_written(tmp_path)


def test_truncated_checkpoint(tmp_path, tiny_sam_checkpoint):
    broken = tmp_path / "broken.pth"
    broken.write_bytes(tiny_sam_checkpoint.read_bytes()[:2000])
    with pytest.raises(BadInput, match=r"broken.pth: cannot read SAM checkpoint, corrupt"):
        load_sam(broken, "tiny")


def test_checkpoint_with_code_in_it_is_refused(tmp_path):
    # weights_only=True: a pickle that would build arbitrary objects is not loaded
    path = tmp_path / "pickled.pth"
    torch.save({"model": build_tiny_sam()}, path)
    with pytest.raises(BadInput, match=r"pickled.pth: cannot read SAM checkpoint"):
        load_sam(path, "tiny")


def test_checkpoint_for_another_model_type(tmp_path, tiny_sam_checkpoint):
    state = torch.load(tiny_sam_checkpoint, weights_only=True)
    state["image_encoder.pos_embed"] = torch.zeros(1, 8, 8, 32)  # right name, wrong shape
    path = tmp_path / "other.pth"
    torch.save(state, path)
    with pytest.raises(BadInput, match=r"other.pth: checkpoint does not fit SAM model type 'tiny'"):
        load_sam(path, "tiny")
    del state["image_encoder.pos_embed"]
    torch.save(state, path)
    with pytest.raises(BadInput, match=r"1 missing.*check masks.sam_model_type"):
        load_sam(path, "tiny")


def test_corrupt_checkpoint_in_the_stage_writes_nothing(clips, tmp_path):
    frames, _ = moving_square()
    clips.add("v", frames)
    previous_output(tmp_path)
    bad = tmp_path / "sam.pth"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(BadInput, match=r"sam.pth: cannot read SAM checkpoint"):
        run_masks(masks_config(clips.write(), tmp_path, method="sam", sam_checkpoint=str(bad), sam_model_type="tiny"))
    assert_nothing_written(tmp_path)


@pytest.mark.parametrize(
    "fill, problem",
    [
        (lambda m: m[:] == 2, r"empty \(no foreground\) in all frames"),
        (lambda m: m[:] == m[:], r"full \(no background\) in all frames"),
    ],
)
def test_user_masks_all_empty_or_all_full(clips, tmp_path, fill, problem):
    frames, truth = moving_square()
    clips.add("good", frames, truth_masks=truth)
    clips.add("drawn", frames, user_masks=fill(truth.astype(int)))
    previous_output(tmp_path)
    with pytest.raises(BadInput, match=r"drawn.npz \(id 'drawn'\): user mask is " + problem):
        run_masks(masks_config(clips.write(), tmp_path))
    assert_nothing_written(tmp_path)


def test_user_masks_empty_in_some_frames_names_them():
    frames, truth = moving_square()
    truth[[2, 4]] = False
    with pytest.raises(BadInput, match=r"v.npz \(id 'v'\): user mask is empty \(no foreground\) in frames 2, 4"):
        validate_user_masks(truth, frames, "v.npz", "v")


def test_user_masks_wrong_count_and_size():
    frames, truth = moving_square()
    with pytest.raises(BadInput, match=r"\(id 'v'\): 5 user masks for 6 clip frames"):
        validate_user_masks(truth[:5], frames, "v.npz", "v")
    with pytest.raises(BadInput, match=r"\(id 'v'\): user masks are 16x32, the clip frames are 32x32"):
        validate_user_masks(truth[:, :, :16], frames, "v.npz", "v")


def test_box_outside_the_clip_is_refused(clips, tmp_path):
    frames, _ = moving_square()
    clips.add("v", frames, box="10 10 300 200")  # source pixels, not clip pixels
    with pytest.raises(BadInput, match=r"\(id 'v'\): box '10 10 300 200' lies outside the 32x32 clip"):
        run_masks(masks_config(clips.write(), tmp_path))


# --- PNG masks as a user draws them (read by ingest, which the masks stage then trusts) ---------


def test_non_binary_png_is_caught_by_ingest_naming_video_and_frame(tmp_path):
    root = tmp_path / "data"
    ds = root / "raw" / "ds"
    ds.mkdir(parents=True)
    scene = Scene("red", "star", "sand", "run", radius=5.0, params=(0.0, 1.0, 2.0, 0.2))
    frames, truth = render_video(scene, 32, 8, np.random.default_rng(0))
    write_mp4(ds / "v.mp4", frames, 8.0)
    write_mask_pngs(truth, ds / "masks")
    ramp = np.tile(np.linspace(0, 255, 32).astype(np.uint8), (32, 1))  # a soft matte / photo, not a mask
    Image.fromarray(ramp).save(ds / "masks" / "0003.png")
    (ds / "manifest.yaml").write_text(
        yaml.safe_dump({"videos": [{"id": "v", "video": "v.mp4", "prompt": "a red star", "masks": "masks"}]})
    )
    cfg = IngestConfig(
        manifest=str(ds / "manifest.yaml"),
        input_dir=str(ds),
        data_root=str(root),
        out_dir=str(root / "clips"),
        n_frames=8,
        height=32,
        width=32,
    )
    rows, _ = parse_manifest(cfg.manifest, cfg.data_root)
    with pytest.raises(BadInput, match=r"\(id 'v'\): .*0003.png: not a binary mask: \d+% of its pixels are grey"):
        decode_clip(rows[0], cfg)


def test_png_mask_forms_that_are_fine_or_not(tmp_path):
    m = np.zeros((16, 16), np.uint8)
    m[4:12, 4:12] = 255
    m[4, 4:12] = 100  # an anti-aliased edge, under the threshold
    Image.fromarray(m).save(tmp_path / "0000.png")
    Image.fromarray((m > 0).astype(np.uint8)).save(tmp_path / "0001.png")  # 0/1 labels
    masks = read_mask_pngs(tmp_path)
    assert masks[0, 4:12, 4:12].sum() == 56 and masks[1, 4:12, 4:12].all()
    colour = np.zeros((16, 16, 3), np.uint8)
    colour[2:5, 2:5] = (200, 0, 0)  # a dim red mask: luminance 60, thresholding would empty it
    Image.fromarray(colour).save(tmp_path / "0002.png")
    with pytest.raises(ValueError, match=r"0002.png: not a binary mask: grey but no white pixels"):
        read_mask_pngs(tmp_path)


def test_object_masks_become_the_foreground_and_bad_ones_are_named(clips, tmp_path):
    frames, truth = moving_square()
    left, right = truth.copy(), truth.copy()
    left[..., 16:], right[..., :16] = False, False
    clips.add("two", frames, object_masks=np.stack([left, right]))
    run_masks(masks_config(clips.write(), tmp_path))
    with np.load(tmp_path / "masks" / "two.npz") as out:
        np.testing.assert_array_equal(out["objects"], np.stack([left, right]))
        np.testing.assert_array_equal(out["masks"], truth)

    hidden = np.stack([truth, np.zeros_like(truth)])  # the second object is never seen
    clips.add("hidden", frames, object_masks=hidden)
    with pytest.raises(BadInput, match=r"hidden.npz \(id 'hidden'\): object 1's masks are empty in every frame"):
        run_masks(masks_config(clips.write(), tmp_path / "again"))
    with pytest.raises(BadInput, match=r"\(id 'v'\): object masks must be \(objects, 6, 32, 32\)"):
        validate_object_masks(hidden[:, :5], frames, "v.npz", "v")
