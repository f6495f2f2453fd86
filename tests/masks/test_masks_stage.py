"""The stage as later stages see it: output contract, metrics, the reader, params, the flow."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from masks_helpers import masks_config

from tasks.common.io import load_clip
from tasks.common.params import load_stage_config
from tasks.contract import read_masks, read_masks_manifest
from tasks.masks.stage import MasksConfig, run_masks

REPO = Path(__file__).resolve().parents[2]


def test_fallback_run_writes_the_output_contract(toy_clips, tmp_path):
    metrics = run_masks(masks_config(toy_clips, tmp_path))
    out = tmp_path / "masks"
    manifest = read_masks_manifest(out)
    assert list(manifest.columns) == ["id", "method", "n_frames", "lost_frames", "unrecovered_frames", "iou"]
    assert (manifest["method"] == "fallback:median_background").all()
    for _, row in manifest.iterrows():
        clip = load_clip(toy_clips / f"{row['id']}.npz")
        masks = read_masks(out, row["id"])
        assert masks.dtype == bool and masks.shape == clip["frames"].shape[:3] == (row["n_frames"], 64, 64)
        assert float(row["iou"]) >= 0.9 and metrics["per_video"][row["id"]]["seconds_per_frame"] > 0
    saved = json.loads((tmp_path / "metrics" / "masks.json").read_text())
    assert saved == metrics and saved["mean_iou"] >= 0.9 and saved["methods"] == {"fallback:median_background": 2}
    assert set(saved["per_video"]) == set(manifest["id"])
    assert (out / "preview.png").stat().st_size > 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["manifest.csv", "preview.png", *(f"{v}.npz" for v in manifest["id"])]
    )

    # a cached output the train fingerprint reads: a second run writes the same bytes (no timings)
    run_masks(masks_config(toy_clips, tmp_path / "again"))
    assert (tmp_path / "again" / "masks" / "manifest.csv").read_bytes() == (out / "manifest.csv").read_bytes()


def test_videos_without_truth_have_no_iou(clips, tmp_path, toy_clips):
    clip = load_clip(next(toy_clips.glob("*.npz")))
    clips.add("real", clip["frames"])
    metrics = run_masks(masks_config(clips.write(), tmp_path))
    assert metrics["mean_iou"] is None and metrics["per_video"]["real"]["iou"] is None
    assert read_masks_manifest(tmp_path / "masks")["iou"].tolist() == [""]


def test_read_masks_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no masks for video 'x'; run the masks stage first"):
        read_masks(tmp_path, "x")


def test_shipped_params_validate_and_default_to_the_fallback():
    cfg = load_stage_config(MasksConfig, "masks", REPO / "params.yaml")
    assert cfg.chosen_method() == "fallback:median_background"
    assert MasksConfig(sam_checkpoint="x.pth").chosen_method() == "sam"


@pytest.mark.slow
def test_flow_runs_from_a_params_file(toy_clips, tmp_path, prefect_harness):
    from flows.masks import masks_flow

    params = tmp_path / "params.yaml"
    params.write_text(
        f"masks:\n  clips_dir: {toy_clips}\n  out_dir: {tmp_path / 'masks'}\n"
        f"  metrics: {tmp_path / 'masks.json'}\n  fallback: grabcut\n"
    )
    metrics = masks_flow(str(params))
    assert metrics["methods"] == {"fallback:grabcut": 2}
    assert pd.read_csv(tmp_path / "masks" / "manifest.csv")["method"].eq("fallback:grabcut").all()
    assert np.isfinite(metrics["mean_iou"])
