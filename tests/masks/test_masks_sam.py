"""The SAM code path end to end with a tiny SAM (random weights, loaded like a real checkpoint)."""

import json

import numpy as np
import pandas as pd
import torch
from masks_helpers import masks_config, moving_square

from tasks.contract import read_masks
from tasks.masks.stage import run_masks
from tasks.segment.propagate import FirstFramePrompt
from tasks.segment.sam import (
    FramePredictor,
    SamSettings,
    automatic_candidates,
    choose_subject,
    load_sam,
    segment_with_sam,
)


def test_checkpoint_round_trip_gives_the_same_weights(tiny_sam_checkpoint):
    sam = load_sam(tiny_sam_checkpoint, "tiny")
    saved = torch.load(tiny_sam_checkpoint, weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in sam.state_dict().items())
    assert not sam.training


def test_stage_runs_sam_on_every_video_without_user_masks(clips, tmp_path, tiny_sam_checkpoint):
    frames, truth = moving_square(n_frames=4)
    clips.add("boxed", frames, truth_masks=truth, box="1 10 13 22")
    clips.add("clicked", frames, truth_masks=truth, points="7 16")
    clips.add("automatic", frames, truth_masks=truth)
    clips.add("drawn", frames, user_masks=truth, truth_masks=truth)
    cfg = masks_config(
        clips.write(),
        tmp_path,
        method="sam",
        sam_checkpoint=str(tiny_sam_checkpoint),
        sam_model_type="tiny",
        sam_points_per_side=4,
        sam_pred_iou_thresh=0.0,
        sam_stability_thresh=0.0,
    )
    metrics = run_masks(cfg)

    manifest = pd.read_csv(tmp_path / "masks" / "manifest.csv", keep_default_na=False)
    assert manifest["method"].tolist() == ["sam", "sam", "sam", "user"]
    assert metrics["methods"] == {"sam": 3, "user": 1}
    for vid in manifest["id"]:
        masks = read_masks(tmp_path / "masks", vid)
        assert masks.shape == truth.shape and masks.dtype == bool and masks.any(axis=(1, 2)).all()
    assert (read_masks(tmp_path / "masks", "drawn") == truth).all()
    assert json.loads((tmp_path / "metrics" / "masks.json").read_text())["per_video"]["drawn"]["iou"] == 1.0
    assert (tmp_path / "masks" / "preview.png").is_file()


def test_each_frame_is_embedded_once_even_with_automatic_candidates(tiny_sam_checkpoint):
    frames, truth = moving_square(n_frames=5)
    predictor = FramePredictor(load_sam(tiny_sam_checkpoint, "tiny"))
    settings = SamSettings(points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    track = segment_with_sam(predictor, frames, FirstFramePrompt(), truth, settings, "v")
    assert track.masks.shape == truth.shape
    assert predictor.n_embeddings == len(frames)
    automatic_candidates(predictor, frames[-1], settings)  # the generator reuses the last frame's embedding
    assert predictor.n_embeddings == len(frames)


def test_choose_subject_prefers_the_moving_region_and_drops_background():
    ref = np.zeros((20, 20), bool)
    ref[5:10, 5:10] = True
    background = np.ones_like(ref)
    background[5:10, 5:10] = False  # huge: > half the frame
    part = np.zeros_like(ref)
    part[5:7, 5:7] = True
    obj = ref.copy()
    obj[10, 5:10] = True
    elsewhere = np.zeros_like(ref)
    elsewhere[15:19, 15:19] = True
    settings = SamSettings()
    assert (choose_subject([background, part, obj, elsewhere], ref, settings) == obj).all()
    assert choose_subject([background, elsewhere], ref, settings) is None
    assert choose_subject([obj], np.zeros_like(ref), settings) is None
